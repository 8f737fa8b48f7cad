/**
 * ReleaseErrors: the rollout engine's faults, one release at a time. Deciding a release, or acting
 * on its model (installer, supervisor), may throw: the error is caught and kept against that
 * release (`model@version`), counted per (model, version, code) for
 * `llmesh_rollout_release_errors_total`, logged once per change, and shown in the rollout status;
 * the engine goes on with the other releases. A conflicted release (several valid manifests for
 * different files) is an error of its own (`ERR_RELEASE_CONFLICT`).
 */
import type { Logger } from '../logger.ts'
import { type Fault, Faults } from '../telemetry/faults.ts'

/** A release that fails now, as status shows it. */
export type ReleaseError = Omit<Fault, 'item'> & { model: string; version: string }

/** Failures of one release with one code since start. */
export interface ReleaseErrorCount {
  model: string
  version: string
  code: string
  count: number
}

const splitKey = (key: string): { model: string; version: string } => {
  const at = key.lastIndexOf('@')
  return { model: key.slice(0, at), version: key.slice(at + 1) }
}

/** Release errors, by `model@version`. */
export class ReleaseErrors {
  readonly faults: Faults
  /** Per model, the release whose acting failed last (cleared once the model reconciles). */
  private readonly acting = new Map<string, string>()

  constructor(components: { logger: Logger; now?: () => number }) {
    this.faults = new Faults(components, { what: 'release evaluation failed' })
  }

  /**
   * Runs `fn` (acting on one model); a failure is an error of the release `release()` names
   * (the target, else the active version), never thrown. Resolves once done.
   */
  async act(model: string, fn: () => Promise<void>, release: () => Promise<string>): Promise<void> {
    const was = this.acting.get(model)
    try {
      await fn()
      if (was !== undefined) this.faults.ok(was)
      this.acting.delete(model)
    } catch (err) {
      const key = `${model}@${await release().catch(() => 'none')}`
      if (was !== undefined && was !== key) this.faults.ok(was)
      this.acting.set(model, key)
      this.faults.fail(key, err)
    }
  }

  /** Releases failing now. */
  list(): ReleaseError[] {
    return this.faults.list().map(({ item, ...f }) => ({ ...splitKey(item), ...f }))
  }

  /** Failures per (model, version, code) since start. */
  counts(): ReleaseErrorCount[] {
    return this.faults.totals().map(({ item, code, count }) => ({ ...splitKey(item), code, count }))
  }
}
