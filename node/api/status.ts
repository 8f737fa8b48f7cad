/**
 * `GET /status`: what this node knows. The daemon owns a `StatusRegistry`; other services plug in
 * through it: `setModels` (the installer: per model active/previous/staged), `setModelNotes` (the
 * rollout engine: why a model has no active version), `setReleaseState` (the rollout engine: a
 * release's state), and `addSection` (any extra top-level field). `loops` collects the faults of
 * the node's periodic loops (shown as the `loops` section and in /metrics).
 */

import type { FastifyPluginAsync } from 'fastify'
import type { FleetDevice } from '../../protocols/fleet/device-view.ts'
import type { DownloadStatus } from '../install/progress.ts'
import { LoopErrors } from '../telemetry/faults.ts'

/** Versions of one model on this device. */
export interface ModelStatus {
  active: string | null
  previous: string | null
  staged: string[]
  /**
   * Set when this device deactivated the model (a bad version with nothing to go back to):
   * `active` is null, nothing is served, and this says which version and why.
   */
  deactivated?: ModelNote
  /** A download in progress (bytes, rate, ETA, source peers); null or absent when none. */
  downloading?: DownloadStatus | null
}

/** Why a model has no active version on this device. */
export interface ModelNote {
  version: string
  /** e.g. `release aborted`, `local rollback: load-failure`. */
  reason: string
  at: number
}

/** One release as /status shows it. */
export interface ReleaseStatus {
  model: string
  version: string
  seq: number
  /** Rollout state from the rollout engine, `known` until one is plugged in. */
  state: string
  digest: string
  created_at: number
  expires_at: number
}

/** One device of the fleet in /status: the fleet device view. */
export type DeviceStatus = FleetDevice

/** The JSON of `GET /status`. */
export interface NodeStatus {
  device: { id: string; tags: string[]; enrolled: boolean; role: string; fleet: string }
  peers: string[]
  releases: ReleaseStatus[]
  models: Record<string, ModelStatus>
  devices: DeviceStatus[]
  mesh: Record<string, unknown>
  [section: string]: unknown
}

/** Provider of the `models` section. */
export type ModelsProvider = () => Record<string, ModelStatus> | Promise<Record<string, ModelStatus>>
/** Provider of per-model deactivation notes. */
export type ModelNotesProvider = () => Record<string, ModelNote>
/** Provider of a release's rollout state. */
export type ReleaseStateProvider = (model: string, version: string) => string | undefined
/** Provider of an extra section. */
export type SectionProvider = () => unknown

/** Hooks through which services contribute to /status. */
export class StatusRegistry {
  private modelsBase: ModelsProvider = () => ({})
  private modelNotes: ModelNotesProvider = () => ({})
  /** Per-model versions, with the deactivation note of models that have no active version. */
  readonly models = async (): Promise<Record<string, ModelStatus>> => {
    const out = await this.modelsBase()
    for (const [model, note] of Object.entries(this.modelNotes())) {
      const m = out[model]
      if (m !== undefined && m.active === null) out[model] = { ...m, deactivated: note }
    }
    return out
  }
  releaseState: ReleaseStateProvider = () => undefined
  readonly sections = new Map<string, SectionProvider>()
  /** Faults of this node's periodic loops (rollout, prestage, anti-entropy, health-report, gc). */
  readonly loops = new LoopErrors()

  constructor() {
    this.sections.set('loops', () => this.loops.status())
  }

  /** Sets the provider of per-model versions (the installer). */
  setModels(fn: ModelsProvider): void {
    this.modelsBase = fn
  }

  /** Sets the provider of deactivation notes (the rollout engine). */
  setModelNotes(fn: ModelNotesProvider): void {
    this.modelNotes = fn
  }

  /** Sets the provider of release rollout states (the rollout engine). */
  setReleaseState(fn: ReleaseStateProvider): void {
    this.releaseState = fn
  }

  /** Adds a top-level section (must not shadow a built-in one). */
  addSection(name: string, fn: SectionProvider): void {
    if (['device', 'peers', 'releases', 'models', 'devices', 'mesh'].includes(name)) {
      throw new Error(`status section ${name} is built in`)
    }
    this.sections.set(name, fn)
  }
}

/** Route plugin serving `GET /status` from a builder. */
export function statusRoute(build: () => Promise<NodeStatus>): FastifyPluginAsync {
  return async (app) => {
    app.get('/status', async () => build())
  }
}
