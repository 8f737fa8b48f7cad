/** The narrow views of other services the rollout controller uses. */
import type { DeactivationNote, SupervisorState } from '../inference/types.ts'
import type { HealthEventKind, VersionRef } from '../telemetry/window.ts'

/** The inference supervisor as the controller uses it. */
export interface ControllerSupervisor {
  readonly model: { name: string; version: string | undefined } | undefined
  readonly state: SupervisorState
  /** Why nothing is served on purpose, if the model was deactivated. */
  readonly deactivation?: DeactivationNote | undefined
  switchModel(path: string, meta: { name?: string; version?: string }): Promise<unknown>
  /** Stops serving (worker stopped) and keeps the reason for clients. */
  deactivate(note: Omit<DeactivationNote, 'at'>): Promise<unknown>
  on(event: 'restart' | 'oom', fn: (e: { at: number; during: string }) => void): unknown
  off(event: 'restart' | 'oom', fn: (e: { at: number; during: string }) => void): unknown
}

/** The health reporter as the controller uses it. */
export interface ControllerReporter {
  record(ref: VersionRef, kind: HealthEventKind, n?: number): void
  flush(): Promise<unknown>
  cut(): Promise<unknown>
}
