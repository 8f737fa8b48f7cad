/**
 * RolloutMemory: what the rollout controller must never forget, kept in `<data>/rollout-state.json`
 * (persisted.ts): every release's adopted facts, the releases the fleet aborted or found conflicted, the versions that
 * failed here and the models deactivated here. Changes are written only when the JSON changed.
 */
import type { RolloutState } from '../../protocols/rollout/index.ts'
import { type Deactivation, loadPersisted, type PersistedRollout, savePersisted } from './persisted.ts'

const split = (key: string): [string, string] => {
  const at = key.lastIndexOf('@')
  return [key.slice(0, at), key.slice(at + 1)]
}

/** The controller's persisted facts. */
export class RolloutMemory {
  private readonly dataDir: string
  private p: PersistedRollout = { states: {}, aborted: [], failed: [], deactivated: {} }
  private savedJson = ''

  constructor(dataDir: string) {
    this.dataDir = dataDir
  }

  /** Loads the persisted state (empty when missing). */
  async load(): Promise<void> {
    this.p = await loadPersisted(this.dataDir)
    this.savedJson = JSON.stringify(this.p)
  }

  /** Writes the state if it changed since the last write. */
  async save(): Promise<void> {
    const json = JSON.stringify(this.p)
    if (json === this.savedJson) return
    this.savedJson = json
    await savePersisted(this.dataDir, this.p)
  }

  /** A release's adopted facts from earlier ticks. */
  state(key: string): RolloutState | undefined {
    return this.p.states[key]
  }

  setState(key: string, state: RolloutState): void {
    this.p.states[key] = state
  }

  /** Whether the fleet aborted a release (as known here). */
  isAborted(key: string): boolean {
    return this.p.aborted.includes(key)
  }

  /** Remembers an abort; true when it is new. */
  markAborted(key: string): boolean {
    if (this.isAborted(key)) return false
    this.p.aborted.push(key)
    return true
  }

  /** Whether a release is conflicted (several valid manifests for different files), as known here. */
  isConflicted(key: string): boolean {
    return this.p.conflicted?.includes(key) ?? false
  }

  /** Remembers a conflicted release, for good; true when it is new. */
  markConflicted(key: string): boolean {
    if (this.isConflicted(key)) return false
    this.p.conflicted = [...(this.p.conflicted ?? []), key]
    return true
  }

  /** Remembers a version failed here, for good, and saves. */
  async markFailed(key: string): Promise<void> {
    if (!this.p.failed.includes(key)) this.p.failed.push(key)
    await this.save()
  }

  /** Versions of a model that must not run here (aborted by the fleet, conflicted, or failed here). */
  bad(model: string): Set<string> {
    const out = new Set<string>()
    for (const k of [...this.p.aborted, ...(this.p.conflicted ?? []), ...this.p.failed]) {
      const [m, v] = split(k)
      if (m === model) out.add(v)
    }
    return out
  }

  /** Why a bad version is bad, as a deactivation reason. */
  whyBad(model: string, version: string): string {
    const key = `${model}@${version}`
    if (this.isAborted(key)) return 'release aborted'
    return this.isConflicted(key) ? 'release conflicted' : 'failed on this device'
  }

  /** Every model deactivated here. */
  get deactivated(): Record<string, Deactivation> {
    return this.p.deactivated
  }

  /** Records (or clears, with null) a model's deactivation, and saves. */
  async setDeactivation(model: string, d: Deactivation | null): Promise<void> {
    if (d === null) delete this.p.deactivated[model]
    else this.p.deactivated[model] = d
    await this.save()
  }
}
