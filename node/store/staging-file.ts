/**
 * The write side of one copy on disk: a release being downloaded is built in place, in a staging
 * file preallocated at the release's size. Hypercore verifies each arriving block against the feed's
 * signed Merkle tree, then writes block, tree nodes and bitfield in one storage write batch; the
 * store wraps that batch (file-blocks.ts) so a block this file has a place for goes to the file, at
 * every offset its chunk occupies, and RocksDB keeps only the tree and the bitfield.
 *
 * Crash safety: the batch's file writes complete before the batch is flushed to RocksDB, so a
 * bitfield bit is never set for a block whose bytes were not handed to the kernel first (a kill -9
 * loses neither). After a power loss the file may still lack bytes the bitfield claims: the
 * installer checks every claimed chunk's sha256 in the file when it resumes and clears and refetches
 * what is wrong (node/install/staging.ts).
 */
import { createHash } from 'node:crypto'
import { type FileHandle, open } from 'node:fs/promises'
import { STAGING_HASH_READ_BYTES } from './constants.ts'
import type { BlockSink, FileChunk } from './file-blocks.ts'

export type { BlockSink } from './file-blocks.ts'

/** A block whose size is not its chunk's, seen while downloading (the manifest and the feed disagree). */
export interface SizeMismatch {
  block: number
  got: number
  want: number
}

/** The error a failed staging write is thrown as inside hypercore (its code makes the replicator pause, not ban, the peer). */
export class StagingWriteError extends Error {
  readonly code = 'WRITE_FAILED'
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'StagingWriteError'
  }
}

/** A release's file under construction: block → offsets, positioned writes, chunk reads. */
export class StagingFile implements BlockSink {
  readonly path: string
  readonly size: number
  /** Blocks whose bytes are in the file at every offset: downloaded into it, copied in, or found there on resume. */
  readonly placed = new Set<number>()
  /** The first downloaded block whose size was not its chunk's (it went to RocksDB instead). */
  mismatch: SizeMismatch | null = null
  /** The first write that failed (e.g. ENOSPC); later blocks are refused too. */
  error: Error | null = null
  /** Called once, with the first failed write's error. */
  onError: ((err: Error) => void) | undefined
  private readonly fh: FileHandle
  private readonly offsets = new Map<number, number[]>()
  private readonly sizes = new Map<number, number>()

  private constructor(path: string, fh: FileHandle, chunks: readonly FileChunk[]) {
    this.path = path
    this.fh = fh
    let offset = 0
    for (const c of chunks) {
      const at = this.offsets.get(c.block)
      if (at === undefined) this.offsets.set(c.block, [offset])
      else at.push(offset)
      this.sizes.set(c.block, c.size)
      offset += c.size
    }
    this.size = offset
  }

  /**
   * Opens (creating it if absent) the staging file of `chunks` and sets its length to their total
   * size (sparse: space is taken as blocks arrive). Returns it and whether it existed.
   */
  static async open(path: string, chunks: readonly FileChunk[]): Promise<{ file: StagingFile; existed: boolean }> {
    let existed = true
    const fh = await open(path, 'r+').catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err
      existed = false
      return open(path, 'w+')
    })
    const file = new StagingFile(path, fh, chunks)
    try {
      await fh.truncate(file.size)
    } catch (err) {
      await fh.close()
      throw err
    }
    return { file, existed }
  }

  /** Whether `block` has a place in this file. */
  has(block: number): boolean {
    return this.offsets.has(block)
  }

  accepts(block: number, bytes: number): boolean {
    const want = this.sizes.get(block)
    if (want === undefined || this.error !== null) return false
    if (want === bytes) return true
    this.mismatch ??= { block, got: bytes, want }
    return false
  }

  async put(blocks: ReadonlyArray<readonly [number, Buffer]>): Promise<void> {
    if (this.error !== null) throw new StagingWriteError(`staging file ${this.path} failed`, { cause: this.error })
    try {
      const writes: Array<{ offset: number; data: Buffer }> = []
      for (const [block, data] of blocks) {
        for (const offset of this.offsets.get(block) ?? []) writes.push({ offset, data })
      }
      await this.writeRuns(writes)
      for (const [block] of blocks) this.placed.add(block)
    } catch (err) {
      if (this.error === null) {
        this.error = err as Error
        this.onError?.(err as Error)
      }
      throw new StagingWriteError(`writing blocks to ${this.path}: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Writes a block the node already holds (a reused or resumed chunk) at every offset of its chunk. */
  async copyIn(block: number, data: Buffer): Promise<void> {
    await this.writeRuns((this.offsets.get(block) ?? []).map((offset) => ({ offset, data })))
    this.placed.add(block)
  }

  /** Offsets of `block`'s chunk in the file. */
  offsetsOf(block: number): readonly number[] {
    return this.offsets.get(block) ?? []
  }

  /** Reads `size` bytes at `offset` (a chunk as it is in the file now). */
  async read(offset: number, size: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(size)
    let done = 0
    while (done < size) {
      const { bytesRead } = await this.fh.read(buf, done, size - done, offset + done)
      if (bytesRead === 0) break
      done += bytesRead
    }
    return done === size ? buf : buf.subarray(0, done)
  }

  /**
   * Hex sha256 and size of the file as it is on disk, read front to back through two buffers
   * allocated once (the next read runs while the current buffer is hashed): a fresh buffer per read
   * (a read stream) is 256 MiB of short-lived buffer memory for 256 MiB, which V8 counts against
   * its old generation's budget, so hashing a release ran a full mark-compact every few dozen MiB.
   */
  async digest(): Promise<{ sha256: string; size: number }> {
    const h = createHash('sha256')
    const bufs = [Buffer.allocUnsafeSlow(STAGING_HASH_READ_BYTES), Buffer.allocUnsafeSlow(STAGING_HASH_READ_BYTES)]
    let size = 0
    let i = 0
    let next = this.fh.read(bufs[0], 0, STAGING_HASH_READ_BYTES, 0)
    for (;;) {
      const { bytesRead } = await next
      if (bytesRead === 0) break
      const cur = bufs[i]
      size += bytesRead
      i ^= 1
      next = this.fh.read(bufs[i], 0, STAGING_HASH_READ_BYTES, size)
      h.update(cur.subarray(0, bytesRead))
    }
    return { sha256: h.digest('hex'), size }
  }

  /** fsyncs the file. */
  async sync(): Promise<void> {
    await this.fh.sync()
  }

  /** Closes the file (idempotent). */
  async close(): Promise<void> {
    await this.fh.close().catch(() => {})
  }

  /** Positioned writes, gathered into one writev per run of adjacent ranges. */
  private async writeRuns(writes: Array<{ offset: number; data: Buffer }>): Promise<void> {
    writes.sort((a, b) => a.offset - b.offset)
    const runs: Array<{ offset: number; bufs: Buffer[]; bytes: number }> = []
    for (const w of writes) {
      const last = runs.at(-1)
      if (last !== undefined && last.offset + last.bytes === w.offset) {
        last.bufs.push(w.data)
        last.bytes += w.data.byteLength
      } else runs.push({ offset: w.offset, bufs: [w.data], bytes: w.data.byteLength })
    }
    await Promise.all(runs.map((r) => this.writeAt(r.offset, r.bufs, r.bytes)))
  }

  private async writeAt(offset: number, bufs: Buffer[], bytes: number): Promise<void> {
    let { bytesWritten } = await this.fh.writev(bufs, offset)
    if (bytesWritten === bytes) return
    const rest = Buffer.concat(bufs)
    while (bytesWritten < bytes) {
      const r = await this.fh.write(rest, bytesWritten, bytes - bytesWritten, offset + bytesWritten)
      bytesWritten += r.bytesWritten
    }
  }
}
