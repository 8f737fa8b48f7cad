/**
 * Fetcher: makes every block of a release's chunk list local, downloading only the blocks this
 * node does not hold yet (earlier versions' blocks are reused), from any peer replicating the
 * feed. Hypercore verifies each block against the feed's signed Merkle tree on arrival; the
 * fetcher then checks each chunk's sha256 against the manifest (or leaves that to a caller that
 * reads every block anyway: the installer's assembly). Blocks persist in the
 * corestore as they arrive, so a restart continues where the last run stopped.
 */
import { createHash, randomInt } from 'node:crypto'
import type Hypercore from 'hypercore'
import { VerificationError } from '../../protocols/errors.ts'
import type { ChunkIndex } from '../../protocols/schemas/index.ts'
import { blockRuns } from './block-runs.ts'
import { FETCH_PARALLEL } from './constants.ts'
import type { ModelStore } from './model-store.ts'

/** Progress of one fetch, in blocks of the release. */
export interface FetchProgress {
  blocksHave: number
  blocksTotal: number
}

/** Options of one fetch. */
export interface FetchOptions {
  onProgress?: (p: FetchProgress) => void
  /** Each missing block as it arrives: its size and the peer that sent it (libp2p id, when known). */
  onBlock?: (bytes: number, peer: string | undefined) => void
  signal?: AbortSignal
  /**
   * Check every chunk's sha256 against the index once all blocks are local (default true). The
   * installer passes false: its assembly reads every block anyway and checks sizes and the
   * whole-file sha256 as it writes (node/install/assemble.ts), so this pass would read and hash the
   * file a second time.
   */
  verifyChunks?: boolean
}

/** The distinct blocks a chunk list uses. */
export function releaseBlocks(index: ChunkIndex): number[] {
  return [...new Set(index.chunks.map((c) => c.block))].sort((a, b) => a - b)
}

/** Blocks of the release this node already holds / still misses. */
export async function blockInventory(
  core: Hypercore,
  blocks: number[],
): Promise<{ have: number[]; missing: number[] }> {
  const have: number[] = []
  const missing: number[] = []
  for (const b of blocks) {
    if (b < core.length && (await core.has(b))) have.push(b)
    else missing.push(b)
  }
  return { have, missing }
}

/**
 * Downloads the missing blocks of `index` and (unless `verifyChunks` is false) checks every chunk's
 * sha256. Resolves when all are local; rejects with ERR_DIGEST_MISMATCH or on abort.
 */
export async function fetchRelease(store: ModelStore, index: ChunkIndex, opts: FetchOptions = {}): Promise<Hypercore> {
  const core = await store.feed(index.feed)
  const blocks = releaseBlocks(index)
  const total = blocks.length
  let { missing } = await blockInventory(core, blocks)
  let have = total - missing.length
  opts.onProgress?.({ blocksHave: have, blocksTotal: total })
  if (missing.length > 0) {
    const wanted = new Set(missing)
    const onDownload = (i: number, bytes: number, from: unknown) => {
      if (wanted.delete(i)) {
        have++
        opts.onBlock?.(bytes, store.peerOf(from))
        opts.onProgress?.({ blocksHave: have, blocksTotal: total })
      }
    }
    core.on('download', onDownload)
    const done = core.findingPeers()
    try {
      if (core.length < index.feed_length) await waitForLength(core, index.feed_length, opts.signal)
      await downloadBlocks(core, missing, opts.signal)
    } finally {
      done()
      core.off('download', onDownload)
    }
    missing = (await blockInventory(core, blocks)).missing
    if (missing.length > 0) throw new Error(`fetch ended with ${missing.length} blocks missing`)
  }
  if (opts.verifyChunks === false) return core
  for (const c of index.chunks) {
    const data = await core.get(c.block, { wait: false })
    if (data === null) throw new Error(`block ${c.block} vanished`)
    const h = createHash('sha256').update(data).digest('hex')
    if (h !== c.hash || data.byteLength !== c.size) {
      throw new VerificationError('ERR_DIGEST_MISMATCH', `block ${c.block} does not match chunk hash ${c.hash}`)
    }
  }
  return core
}

/**
 * Downloads `blocks` as range requests over their contiguous runs, in random order per node,
 * at most `FETCH_PARALLEL` runs at a time (a new one starts as one completes).
 *
 * Why: given an explicit block list, hypercore walks it in order for every peer (and checks each
 * listed block against each peer's bitfield on every request), so devices fetching the same release
 * ask the seed for the same blocks at the same time and hold nothing the others miss. A plain range
 * request (`linear: false`) instead picks a random start for every request and scans the peer's
 * bitfield from there: each device soon holds blocks the others lack and serves them (its `have`
 * messages reach every peer it replicates with). A release's missing blocks are few runs: new
 * chunks are appended to the lineage feed together.
 */
export async function downloadBlocks(
  core: Hypercore,
  blocks: readonly number[],
  signal?: AbortSignal,
  init: { parallel?: number } = {},
): Promise<void> {
  const order = shuffled(blockRuns(blocks))
  const active = new Set<{ destroy: () => void }>()
  let next = 0
  const worker = async () => {
    while (next < order.length) {
      signal?.throwIfAborted()
      const [start, end] = order[next++]
      const range = core.download({ start, end, linear: false })
      active.add(range)
      try {
        await abortable(range.done(), signal)
      } finally {
        active.delete(range)
      }
    }
  }
  const workers = Math.max(1, Math.min(init.parallel ?? FETCH_PARALLEL, order.length))
  try {
    await Promise.all(Array.from({ length: workers }, worker))
  } catch (err) {
    for (const r of active) r.destroy()
    throw err
  }
}

/** A copy of `xs` in uniformly random order (Fisher–Yates). */
export function shuffled<T>(xs: readonly T[]): T[] {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1)
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

async function waitForLength(core: Hypercore, length: number, signal?: AbortSignal): Promise<void> {
  while (core.length < length) {
    signal?.throwIfAborted()
    await abortable(core.update({ wait: true }), signal)
    if (core.length < length) await abortable(new Promise((r) => setTimeout(r, 200)), signal)
  }
}

/** Rejects with the signal's reason as soon as it aborts. */
function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return p
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error('aborted'))
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
