/**
 * Garbage collection of installed versions: which versions to keep (pure), and freeing the
 * corestore blocks no kept version uses. Never touches a writable feed (the seed's own lineage is
 * the source of every block).
 */
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { ModelStore } from '../store/model-store.ts'

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
