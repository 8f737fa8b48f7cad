/**
 * Appending a file to a model's lineage feed (the seed's side of delta reuse): the file is cut by
 * the content-defined chunker at the lineage's parameters, each chunk is looked up by its sha256 in
 * the lineage's hash index, and only chunks the feed does not hold yet are appended (in batches).
 * The release's chunk index then points reused chunks at existing blocks.
 */
import { createHash } from 'node:crypto'
import type Hypercore from 'hypercore'
import type { ChunkIndex, ChunkRef } from '../../protocols/schemas/index.ts'
import { type ChunkingOptions, chunkFile } from './chunker.ts'
import { lineageChunking } from './lineage-chunking.ts'

/** Blocks appended to the feed in one call. */
const APPEND_BATCH = 64

/** What appending a file to a lineage did. */
export interface AppendResult {
  chunks: ChunkIndex
  size: number
  sha256: string
  /** Chunks (and their bytes) appended because the feed did not hold them. */
  newChunks: number
  newBytes: number
}

/** Options of one append. */
export interface AppendOptions {
  /** Chunk parameters; default: the lineage's own (lineage-chunking.ts). */
  chunking?: ChunkingOptions
  /** Called with the bytes read so far as the file is read. */
  onProgress?: (bytes: number) => void
}

/** sha256 → block of every local block of `core` (the first block of each hash). */
export async function lineageHashIndex(core: Hypercore): Promise<Map<string, number>> {
  const idx = new Map<string, number>()
  for (let i = 0; i < core.length; i++) {
    const block = await core.get(i, { wait: false })
    if (block === null) continue
    const h = createHash('sha256').update(block).digest('hex')
    if (!idx.has(h)) idx.set(h, i)
  }
  return idx
}

/**
 * Chunks `path` and appends to `core` the chunks `idx` does not hold, adding them to `idx`.
 * Throws RangeError for an empty file.
 */
export async function appendChunks(
  core: Hypercore,
  idx: Map<string, number>,
  path: string,
  opts: AppendOptions = {},
): Promise<AppendResult> {
  const chunking = await lineageChunking(core, opts.chunking)
  const whole = createHash('sha256')
  const refs: ChunkRef[] = []
  let pending: Buffer[] = []
  let size = 0
  let newChunks = 0
  let newBytes = 0
  const flush = async () => {
    if (pending.length > 0) await core.append(pending)
    pending = []
  }
  for await (const c of chunkFile(path, chunking)) {
    whole.update(c.data)
    size += c.size
    let block = idx.get(c.hash)
    if (block === undefined) {
      block = core.length + pending.length
      idx.set(c.hash, block)
      pending.push(c.data)
      newChunks++
      newBytes += c.size
      if (pending.length >= APPEND_BATCH) await flush()
    }
    refs.push({ hash: c.hash, block, size: c.size })
    opts.onProgress?.(size)
  }
  await flush()
  if (refs.length === 0) throw new RangeError(`${path} is empty`)
  return {
    chunks: { feed: core.key.toString('hex'), feed_length: core.length, chunking, chunks: refs },
    size,
    sha256: whole.digest('hex'),
    newChunks,
    newBytes,
  }
}
