/**
 * Assembles a release's file from local feed blocks into `model.gguf.partial` in one pass: blocks
 * are read a few ahead, each chunk's size is checked, the whole-file sha256 is computed over the
 * bytes as they are written (gathered into large writes), then the partial is fsynced. Only if
 * sha256 and size match the signed manifest is `manifest.json` written and the partial renamed to
 * `model.gguf` (fsyncing the directory); on a mismatch a second pass names the first chunk whose
 * sha256 is wrong. A `model.gguf` therefore always is a complete, verified file.
 *
 * The per-chunk sha256 pass the fetcher used to make before assembly is not repeated here: the
 * chunks' sizes and the whole-file sha256 together pin every chunk's bytes (the manifest is
 * signed), and hypercore verified every downloaded block against the feed's signed tree already.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type Hypercore from 'hypercore'
import type { ChunkRef, ReleaseManifest } from '../../protocols/schemas/index.ts'
import { writeSynced } from '../durable-file.ts'
import { ASSEMBLE_READ_AHEAD, ASSEMBLE_WRITE_BYTES, MANIFEST_FILE } from './constants.ts'
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
    const got = await writeChunksHashed(partial, core, m.chunks.chunks)
    if (got.sha256 !== m.file.sha256 || got.size !== m.file.size) {
      const bad = await firstBadChunk(core, m.chunks.chunks)
      throw new InstallError(
        'ERR_DIGEST_MISMATCH',
        `${m.model}@${m.version}: assembled file sha256 ${got.sha256} (${got.size} bytes) does not match the signed ${m.file.sha256} (${m.file.size} bytes)${bad === null ? '' : `; block ${bad.block} does not match chunk hash ${bad.hash}`}`,
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
  await writeChunksHashed(path, core, chunks)
}

/**
 * Writes the chunks' local blocks, in order, to `path`, fsyncs it, and returns the sha256 and size
 * of what was written. Throws ERR_DIGEST_MISMATCH when a block's size is not its chunk's.
 */
export async function writeChunksHashed(
  path: string,
  core: Hypercore,
  chunks: readonly ChunkRef[],
): Promise<{ sha256: string; size: number }> {
  const whole = createHash('sha256')
  let size = 0
  const reads: Promise<Buffer | null>[] = []
  let next = 0
  const fh = await open(path, 'w')
  try {
    let batch: Buffer[] = []
    let batchBytes = 0
    const flush = async () => {
      await writeAll(fh, batch, batchBytes)
      batch = []
      batchBytes = 0
    }
    for (const c of chunks) {
      while (next < chunks.length && reads.length < ASSEMBLE_READ_AHEAD) {
        const p = core.get(chunks[next++].block, { wait: false })
        p.catch(() => {}) // awaited below in order; a failure after an early exit is not unhandled
        reads.push(p)
      }
      const data = await (reads.shift() as Promise<Buffer | null>)
      if (data === null) throw new Error(`block ${c.block} is not local`)
      if (data.byteLength !== c.size) {
        throw new InstallError(
          'ERR_DIGEST_MISMATCH',
          `block ${c.block} holds ${data.byteLength} bytes, the signed chunk ${c.hash} has ${c.size}`,
        )
      }
      whole.update(data)
      size += data.byteLength
      batch.push(data)
      batchBytes += data.byteLength
      if (batchBytes >= ASSEMBLE_WRITE_BYTES) await flush()
    }
    await flush()
    await fh.sync()
  } finally {
    await fh.close()
  }
  return { sha256: whole.digest('hex'), size }
}

/** Writes every byte of `bufs` (`bytes` in all), looping over short writes. */
async function writeAll(fh: FileHandle, bufs: Buffer[], bytes: number): Promise<void> {
  if (bytes === 0) return
  let { bytesWritten } = await fh.writev(bufs)
  if (bytesWritten === bytes) return
  const rest = Buffer.concat(bufs).subarray(bytesWritten)
  let off = 0
  while (off < rest.byteLength) {
    ;({ bytesWritten } = await fh.write(rest, off))
    off += bytesWritten
  }
}

/** The first chunk whose local block does not hash to the chunk's sha256 (or is missing), or null. */
async function firstBadChunk(core: Hypercore, chunks: readonly ChunkRef[]): Promise<ChunkRef | null> {
  for (const c of chunks) {
    const data = await core.get(c.block, { wait: false })
    if (data === null || createHash('sha256').update(data).digest('hex') !== c.hash) return c
  }
  return null
}
