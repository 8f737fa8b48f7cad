/** The narrow views of other services the rollout controller uses. */
import type { SupervisorState } from '../inference/types.ts'
import type { HealthEventKind, VersionRef } from '../telemetry/window.ts'

/** The inference supervisor as the controller uses it. */
export interface ControllerSupervisor {
  readonly model: { name: string; version: string | undefined } | undefined
  readonly state: SupervisorState
  switchModel(path: string, meta: { name?: string; version?: string }): Promise<unknown>
  on(event: 'restart' | 'oom', fn: (e: { at: number; during: string }) => void): unknown
  off(event: 'restart' | 'oom', fn: (e: { at: number; during: string }) => void): unknown
}

/** The health reporter as the controller uses it. */
export interface ControllerReporter {
  record(ref: VersionRef, kind: HealthEventKind, n?: number): void
  flush(): Promise<unknown>
  cut(): Promise<unknown>
}
