/**
 * Garbage collection of installed versions: which versions to keep (pure), removing the others one
 * by one (a version that will not go is a `gc` loop error, and the next one is tried), and freeing
 * the corestore blocks no kept version uses. Never touches a writable feed (the seed's own lineage is
 * the source of every block).
 */
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { Logger } from '../logger.ts'
import type { ModelStore } from '../store/model-store.ts'
import type { Faults } from '../telemetry/faults.ts'

/**
 * Which versions GC keeps: every pinned one (active, previous, a download in flight; nulls
 * ignored), then the newest of the rest until `max` are kept. `newestFirst` is sorted newest first.
 */
export function retention(
  newestFirst: string[],
  max: number,
  pinned: Array<string | null | undefined>,
): { keep: Set<string>; remove: string[] } {
  const keep = new Set(pinned.filter((v): v is string => typeof v === 'string'))
  for (const v of newestFirst) if (keep.size < max) keep.add(v)
  return { keep, remove: newestFirst.filter((v) => !keep.has(v)) }
}

/** Clears blocks of `feeds` not referenced by `kept`; returns how many blocks were cleared. */
export async function pruneUnreferencedBlocks(
  store: ModelStore,
  feeds: Iterable<string>,
  kept: ReleaseManifest[],
): Promise<number> {
  let cleared = 0
  for (const feed of new Set(feeds)) {
    const core = await store.feed(feed)
    if (core.writable) continue
    const used = new Set<number>()
    for (const m of kept) if (m.chunks.feed === feed) for (const c of m.chunks.chunks) used.add(c.block)
    let start = -1
    for (let i = 0; i <= core.length; i++) {
      const free = i < core.length && !used.has(i) && (await core.has(i))
      if (free && start < 0) start = i
      if (!free && start >= 0) {
        await core.clear(start, i)
        cleared += i - start
        start = -1
      }
    }
  }
  return cleared
}

/** One model's GC run: what to remove and keep, and how. */
export interface CollectPlan {
  model: string
  remove: string[]
  keep: Set<string>
  pruneBlocks: boolean
  manifest(version: string): Promise<ReleaseManifest | null>
  /** The version's file stops serving blocks (called after its unreferenced blocks are cleared, before removal). */
  release(m: ReleaseManifest): void
  removeVersion(version: string): Promise<void>
}

/**
 * Removes `plan.remove` one by one; returns the versions removed. For each, first the feed blocks no
 * kept version uses are cleared (bitfield and all), then its file stops serving blocks, then its
 * directory goes: the node never advertises a block whose bytes (in the store or in an installed
 * file, see node/store/file-blocks.ts) are gone, even if it crashes between the steps.
 */
export async function collectVersions(
  c: { store: ModelStore; faults: Faults; logger: Logger },
  plan: CollectPlan,
): Promise<string[]> {
  const { model } = plan
  const kept: ReleaseManifest[] = []
  for (const v of plan.keep) {
    const m = await plan.manifest(v)
    if (m !== null) kept.push(m)
  }
  const removed: string[] = []
  let cleared = 0
  for (const v of plan.remove) {
    try {
      const m = await plan.manifest(v)
      if (m !== null) {
        if (plan.pruneBlocks) {
          try {
            cleared += await pruneUnreferencedBlocks(c.store, [m.chunks.feed], kept)
            c.faults.ok(`${model} blocks`)
          } catch (err) {
            // GC still goes on; a block left marked held without bytes is answered "no data" to peers
            c.faults.fail(`${model} blocks`, err)
          }
        }
        plan.release(m)
      }
      await plan.removeVersion(v)
      removed.push(v)
      c.faults.ok(`${model}@${v}`)
    } catch (err) {
      c.faults.fail(`${model}@${v}`, err) // one version that will not go never stops GC
    }
  }
  if (removed.length > 0) c.logger.info({ model, removed, blocks_cleared: cleared }, 'garbage collected')
  return removed
}
