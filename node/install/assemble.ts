/**
 * Writes a file from local feed blocks in one pass (agent packages, node/agent-update/unpack.ts):
 * blocks are read a few ahead, each chunk's size is checked, the sha256 is computed over the bytes
 * as they are written (gathered into large writes), then the file is fsynced. Model releases no
 * longer go through here: their blocks are downloaded straight into the file being installed
 * (node/install/staging.ts). `hashFile` hashes a file on disk.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import type Hypercore from 'hypercore'
import type { ChunkRef } from '../../protocols/schemas/index.ts'
import { ASSEMBLE_READ_AHEAD, ASSEMBLE_WRITE_BYTES } from './constants.ts'
import { InstallError } from './errors.ts'

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

/** Writes the chunks' local blocks, in order, to `path` and fsyncs it (agent packages). */
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
