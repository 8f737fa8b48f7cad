/**
 * Downloads cut short and never resumed: which to drop, and dropping them.
 *
 * A download interrupted by a crash, a stop or a stall keeps its staging file (`model.gguf.download`)
 * and `download.json`, so that it resumes where it stopped when its release is prestaged again. But
 * a release superseded by a newer one is never prestaged again, and its partial file would hold up
 * to a whole model's size of an SD card for good. The rule (pure, `staleDownloads`): a download is
 * kept only if it is the one in flight, or it is newer than every installed version of the model and
 * than every other interrupted download; the others are stale. Dropping one clears from the feed the
 * blocks only its file held (`abandonStaging`), then removes its directory. A version directory whose
 * `download.json` is unreadable or does not describe it is removed too (nothing to resume from).
 */
import { rm } from 'node:fs/promises'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { parseVersion } from '../../protocols/version.ts'
import type { Logger } from '../logger.ts'
import type { ModelStore } from '../store/model-store.ts'
import type { Faults } from '../telemetry/faults.ts'
import { MODEL_FILE, STAGING_FILE, STAGING_MANIFEST } from './constants.ts'
import { newestFirst } from './installed-versions.ts'
import { type InstallLayout, listDir } from './layout.ts'
import { abandonStaging, readStagingManifest } from './staging.ts'

/**
 * Interrupted downloads of a model that will not be resumed: every one but the newest, and that one
 * too unless it is newer than all of `installed` and than `inFlight` (which is never stale).
 */
export function staleDownloads(partials: readonly string[], installed: readonly string[], inFlight?: string): string[] {
  const waiting = partials.filter((v) => v !== inFlight).sort(newestFirst)
  const [newest, ...older] = waiting
  if (newest === undefined) return []
  const coming = inFlight === undefined ? installed : [...installed, inFlight]
  const superseded = coming.some((v) => newestFirst(v, newest) <= 0) // a version as new or newer is here
  return superseded ? waiting : older
}

/** The versions of `model` holding an interrupted download (a staging file or its manifest, no model file). */
export async function interruptedDownloads(layout: InstallLayout, model: string): Promise<string[]> {
  const out: string[] = []
  for (const v of await listDir(layout.modelDir(model))) {
    if (parseVersion(v) === undefined) continue
    const entries = await listDir(layout.versionDir(model, v))
    if (entries.includes(MODEL_FILE)) continue
    if (entries.includes(STAGING_FILE) || entries.includes(STAGING_MANIFEST)) out.push(v)
  }
  return out
}

/** What dropping stale downloads uses. */
export interface StagingGcComponents {
  store: ModelStore
  faults: Faults
  logger: Logger
}

/**
 * Drops `model`'s stale downloads (see `staleDownloads`); one that will not go is a fault of the
 * caller's loop and the next is tried. Returns the versions dropped. Call under the model's lock.
 */
export async function collectStaleDownloads(
  c: StagingGcComponents,
  layout: InstallLayout,
  model: string,
  installed: readonly string[],
  inFlight?: string,
): Promise<string[]> {
  const dropped: string[] = []
  for (const v of staleDownloads(await interruptedDownloads(layout, model), installed, inFlight)) {
    try {
      const m: ReleaseManifest | null = await readStagingManifest(layout, model, v)
      if (m !== null) await abandonStaging(c.store, layout, await c.store.feed(m.chunks.feed), m, null)
      await rm(layout.versionDir(model, v), { recursive: true, force: true })
      dropped.push(v)
      c.faults.ok(`${model}@${v} download`)
    } catch (err) {
      c.faults.fail(`${model}@${v} download`, err) // one that will not go never stops GC
    }
  }
  if (dropped.length > 0) c.logger.info({ model, dropped }, 'stale downloads removed')
  return dropped
}
