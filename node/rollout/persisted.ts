/**
 * What the rollout controller keeps across restarts in `<data>/rollout-state.json`: every
 * release's adopted facts (so a restarted node never forgets an abort or a promotion, even if the
 * messages were pruned), the releases the fleet aborted, the versions that failed here, and the
 * models deactivated here (a bad version with nothing to go back to) with the reason, and the
 * releases refused as conflicted (several valid manifests for different files).
 * Written durably (temp file fsynced, renamed, directory fsynced: node/durable-file.ts).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { RolloutState } from '../../protocols/rollout/index.ts'
import type { ModelNote } from '../api/status.ts'
import { writeFileDurable } from '../durable-file.ts'
import { ROLLOUT_STATE_FILE } from './constants.ts'

/** The persisted controller state. */
export interface PersistedRollout {
  /** Rollout facts per `model@version`. */
  states: Record<string, RolloutState>
  /** `model@version` of releases the fleet aborted: never installed or activated again by itself. */
  aborted: string[]
  /** `model@version` that failed here (load, probe, OOM, restart loop): never activated again by itself. */
  failed: string[]
  /**
   * `model@version` of releases whose valid manifests name different files (protocols/rollout/
   * conflicts.ts): refused for good, like an abort. Optional: files written before it lack it.
   */
  conflicted?: string[]
  /** Per model: deactivated here (no active version), which version was bad and why. */
  deactivated: Record<string, Deactivation>
}

/** A model this device deactivated (no version active, nothing served): the bad version and why. */
export type Deactivation = ModelNote

const empty = (): PersistedRollout => ({ states: {}, aborted: [], failed: [], deactivated: {} })

/** Loads the persisted state (empty when missing or unreadable). */
export async function loadPersisted(dataDir: string): Promise<PersistedRollout> {
  try {
    const v = JSON.parse(await readFile(join(dataDir, ROLLOUT_STATE_FILE), 'utf8')) as Partial<PersistedRollout>
    return { ...empty(), ...v }
  } catch {
    return empty()
  }
}

/** Saves it durably and atomically. */
export async function savePersisted(dataDir: string, p: PersistedRollout): Promise<void> {
  const file = join(dataDir, ROLLOUT_STATE_FILE)
  await writeFileDurable(file, JSON.stringify(p))
}
