/**
 * What the rollout controller keeps across restarts in `<data>/rollout-state.json`: every
 * release's adopted facts (so a restarted node never forgets an abort or a promotion, even if the
 * messages were pruned), the releases the fleet aborted, and the versions that failed here.
 * Written atomically (tmp + rename).
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { RolloutState } from '../../protocols/rollout/index.ts'
import { ROLLOUT_STATE_FILE } from './constants.ts'

/** The persisted controller state. */
export interface PersistedRollout {
  /** Rollout facts per `model@version`. */
  states: Record<string, RolloutState>
  /** `model@version` of releases the fleet aborted: never installed or activated again by itself. */
  aborted: string[]
  /** `model@version` that failed here (load, probe, OOM, restart loop): never activated again by itself. */
  failed: string[]
}

/** Loads the persisted state (empty when missing or unreadable). */
export async function loadPersisted(dataDir: string): Promise<PersistedRollout> {
  try {
    const v = JSON.parse(await readFile(join(dataDir, ROLLOUT_STATE_FILE), 'utf8')) as Partial<PersistedRollout>
    return { states: v.states ?? {}, aborted: v.aborted ?? [], failed: v.failed ?? [] }
  } catch {
    return { states: {}, aborted: [], failed: [] }
  }
}

/** Saves it atomically. */
export async function savePersisted(dataDir: string, p: PersistedRollout): Promise<void> {
  const file = join(dataDir, ROLLOUT_STATE_FILE)
  await writeFile(`${file}.tmp`, JSON.stringify(p), { mode: 0o600 })
  await rename(`${file}.tmp`, file)
}
