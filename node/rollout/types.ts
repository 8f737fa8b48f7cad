/** The narrow views of other services the rollout controller uses, and the shapes it shows. */
import type { ReleaseConflict } from '../../protocols/rollout/index.ts'
import type { DaemonContext } from '../daemon.ts'
import type { DeactivationNote, SupervisorState } from '../inference/types.ts'
import type { Installer } from '../install/installer.ts'
import type { HealthEventKind, VersionRef } from '../telemetry/window.ts'
import type { Deactivation } from './persisted.ts'
import type { decideRelease, ReleaseRolloutStatus } from './plan.ts'
import type { ReleaseError } from './release-errors.ts'

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

/** The controller's counters (/status, tests). */
export interface ControllerCounters {
  ticks: number
  verdictsPublished: number
  activations: number
  localRollbacks: number
  fleetRollbacks: number
  deactivations: number
}

/** Every release's rollout status (`GET /rollout`, the `rollout` section of /status). */
export interface RolloutStatusJson {
  device: string
  acting: boolean
  counters: ControllerCounters
  releases: ReleaseRolloutStatus[]
  /** Models this device deactivated (no active version), with why. */
  deactivated: Record<string, Deactivation>
  /** Releases that fail now: their evaluation throws, or they are conflicted. */
  errors: ReleaseError[]
  /** Releases with several valid manifests (`duplicate`: one counts; `conflicted`: refused), or one seq for two versions. */
  conflicts: ReleaseConflict[]
}

/** Options of the rollout controller. */
export interface RolloutControllerInit {
  /** Activate/roll back on this device (default true; the seed: false). */
  act?: boolean
  /** Publish verdicts when this node is an enrolled device (default true). */
  verdicts?: boolean
  /** Prestage announced releases when their policy says so (default true when acting). */
  prestage?: boolean
  decideIntervalMs?: number
  catchUpTimeoutMs?: number
  startupCatchUpMs?: number
  probationMs?: number
}

/** What the rollout controller uses. */
export interface RolloutControllerComponents {
  ctx: Pick<DaemonContext, 'config' | 'identity' | 'logger' | 'store' | 'mesh' | 'publish' | 'status'>
  installer?: Installer
  supervisor?: ControllerSupervisor
  reporter?: ControllerReporter
  now?: () => number
  /** Runs `decide` for one release (tests inject faults; default plan.ts's). */
  decide?: typeof decideRelease
}
