/**
 * Frees the corestore blocks no kept version uses, after GC removed versions. Never touches a
 * writable feed (the seed's own lineage is the source of every block).
 */
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { ModelStore } from '../store/model-store.ts'

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
