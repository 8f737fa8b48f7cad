/**
 * Assembles a release's file from local feed blocks into `model.gguf.partial`, fsyncs it,
 * re-reads it to check the whole-file sha256 and size against the signed manifest, then
 * writes `manifest.json` and renames the partial to `model.gguf` (fsyncing the directory).
 * A `model.gguf` therefore always is a complete, verified file.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type Hypercore from 'hypercore'
import type { ChunkRef, ReleaseManifest } from '../../protocols/schemas/index.ts'
import { writeSynced } from '../durable-file.ts'
import { MANIFEST_FILE } from './constants.ts'
import { InstallError } from './errors.ts'
import { fsyncDir, type InstallLayout } from './layout.ts'

/** Hex sha256 and size of a file on disk. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256')
  let size = 0
  for await (const buf of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    h.update(buf as Buffer)
    size += (buf as Buffer).byteLength
  }
  return { sha256: h.digest('hex'), size }
}

/** System errors that mean the disk (or the quota) is full. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT'])

/**
 * Assembles, verifies and publishes `models/<model>/<version>/model.gguf`. On any failure the
 * partial (and a manifest being written) is removed at once, so a full disk is not kept full; a full
 * disk is refused as `ERR_INSUFFICIENT_DISK`. Nothing here touches `active` or another version.
 */
export async function assembleRelease(layout: InstallLayout, core: Hypercore, m: ReleaseManifest): Promise<string> {
  const dir = layout.versionDir(m.model, m.version)
  const partial = layout.partial(m.model, m.version)
  const manifestTmp = join(dir, `${MANIFEST_FILE}.tmp`)
  try {
    await mkdir(dir, { recursive: true })
    await writeChunks(partial, core, m.chunks.chunks)
    const got = await hashFile(partial)
    if (got.sha256 !== m.file.sha256 || got.size !== m.file.size) {
      throw new InstallError(
        'ERR_DIGEST_MISMATCH',
        `${m.model}@${m.version}: assembled file sha256 ${got.sha256} (${got.size} bytes) does not match the signed ${m.file.sha256} (${m.file.size} bytes)`,
      )
    }
    // fsynced before the rename: after a crash manifest.json is whole or absent, never empty
    await writeSynced(manifestTmp, JSON.stringify(m), 0o644)
    await rename(manifestTmp, join(dir, MANIFEST_FILE))
  } catch (err) {
    await rm(partial, { force: true }).catch(() => {})
    await rm(manifestTmp, { force: true }).catch(() => {})
    const code = (err as NodeJS.ErrnoException).code
    if (code !== undefined && DISK_FULL.has(code)) {
      throw new InstallError(
        'ERR_INSUFFICIENT_DISK',
        `${m.model}@${m.version}: the disk filled up while assembling the ${m.file.size}-byte file (${code}); the partial file was removed, the active version is untouched`,
        { cause: err },
      )
    }
    throw err
  }
  const final = layout.file(m.model, m.version)
  await rename(partial, final)
  await fsyncDir(dir)
  return final
}

/** Writes the chunks' local blocks, in order, to `path` and fsyncs it (model files and agent packages). */
export async function writeChunks(path: string, core: Hypercore, chunks: readonly ChunkRef[]): Promise<void> {
  const fh = await open(path, 'w')
  try {
    for (const c of chunks) {
      const data = await core.get(c.block, { wait: false })
      if (data === null) throw new Error(`block ${c.block} is not local`)
      await fh.write(data)
    }
    await fh.sync()
  } finally {
    await fh.close()
  }
}
