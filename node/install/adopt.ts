/**
 * One copy on disk: an installed, verified version's file becomes the source of its blocks, and the
 * blocks' bytes leave the corestore (node/store/file-blocks.ts). Done right after assembly and, for
 * every installed version, at installer start (so a crash between the rename of `model.gguf` and the
 * strip is repaired, and reads of stripped blocks find their files again after a restart).
 */
import { access, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { ModelStore } from '../store/model-store.ts'
import { BLOCKS_IN_FILE_MARK } from './constants.ts'
import { fsyncDir, type InstallLayout } from './layout.ts'

/** Registers `m`'s installed file as its blocks' source and strips them from the store once. Returns blocks stripped. */
export async function adoptInstalled(
  store: ModelStore,
  layout: InstallLayout,
  m: ReleaseManifest,
  strip = true,
): Promise<number> {
  const dir = layout.versionDir(m.model, m.version)
  const mark = join(dir, BLOCKS_IN_FILE_MARK)
  const stripped = await access(mark).then(
    () => true,
    () => false,
  )
  const n = await store.adoptFile(m.chunks.feed, layout.file(m.model, m.version), m.chunks.chunks, strip && !stripped)
  if (n > 0) {
    await writeFile(mark, '')
    await fsyncDir(dir)
  }
  return n
}

/** The version at `m` is about to be removed: its file no longer serves blocks. */
export function releaseInstalled(store: ModelStore, layout: InstallLayout, m: ReleaseManifest): void {
  store.releaseFile(m.chunks.feed, layout.file(m.model, m.version))
}
