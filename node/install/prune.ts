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
  removeVersion(version: string): Promise<void>
}

/** Removes `plan.remove` one by one, then frees their blocks; returns the versions removed. */
export async function collectVersions(
  c: { store: ModelStore; faults: Faults; logger: Logger },
  plan: CollectPlan,
): Promise<string[]> {
  const { model } = plan
  const feeds = new Set<string>()
  const removed: string[] = []
  for (const v of plan.remove) {
    try {
      const m = await plan.manifest(v)
      await plan.removeVersion(v)
      if (m !== null) feeds.add(m.chunks.feed)
      removed.push(v)
      c.faults.ok(`${model}@${v}`)
    } catch (err) {
      c.faults.fail(`${model}@${v}`, err) // one version that will not go never stops GC
    }
  }
  if (feeds.size === 0 || !plan.pruneBlocks) return removed
  const kept: ReleaseManifest[] = []
  for (const v of plan.keep) {
    const m = await plan.manifest(v)
    if (m !== null) kept.push(m)
  }
  try {
    const n = await pruneUnreferencedBlocks(c.store, feeds, kept)
    c.faults.ok(`${model} blocks`)
    c.logger.info({ model, removed, blocks_cleared: n }, 'garbage collected')
  } catch (err) {
    c.faults.fail(`${model} blocks`, err)
  }
  return removed
}
