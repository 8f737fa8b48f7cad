/**
 * Fetcher: makes every block of a release's chunk list local, downloading only the blocks this
 * node does not hold yet (earlier versions' blocks are reused), from any peer replicating the
 * feed. Hypercore verifies each block against the feed's signed Merkle tree on arrival; the
 * fetcher then checks each chunk's sha256 against the manifest. Blocks persist in the
 * corestore as they arrive, so a restart continues where the last run stopped.
 */
import { createHash, randomInt } from 'node:crypto'
import type Hypercore from 'hypercore'
import { VerificationError } from '../../protocols/errors.ts'
import type { ChunkIndex } from '../../protocols/schemas/index.ts'
import { FETCH_PARALLEL, FETCH_WINDOW } from './constants.ts'
import type { ModelStore } from './model-store.ts'

/** Progress of one fetch, in blocks of the release. */
export interface FetchProgress {
  blocksHave: number
  blocksTotal: number
}

/** Options of one fetch. */
export interface FetchOptions {
  onProgress?: (p: FetchProgress) => void
  signal?: AbortSignal
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
 * Downloads the missing blocks of `index` and checks every chunk's sha256.
 * Resolves when all are local; rejects with ERR_DIGEST_MISMATCH or on abort.
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
    const onDownload = (i: number) => {
      if (wanted.delete(i)) {
        have++
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
 * Downloads `blocks` in a per-node random order, as `FETCH_PARALLEL` concurrent range requests of
 * at most `FETCH_WINDOW` blocks each (a new window starts as one completes).
 *
 * Why: hypercore walks an explicit block list in order for every peer, so devices fetching the same
 * release in the same order ask the seed for the same blocks at the same time and hold nothing the
 * others miss. In random order each device soon holds blocks the others lack and serves them
 * (its `have` messages reach every peer it replicates with). Windows keep hypercore's per-request
 * scan of the list short on large models.
 */
export async function downloadBlocks(
  core: Hypercore,
  blocks: readonly number[],
  signal?: AbortSignal,
  init: { window?: number; parallel?: number } = {},
): Promise<void> {
  const window = init.window ?? FETCH_WINDOW
  const order = shuffled(blocks)
  const windows: number[][] = []
  for (let i = 0; i < order.length; i += window) windows.push(order.slice(i, i + window))
  const active = new Set<{ destroy: () => void }>()
  let next = 0
  const worker = async () => {
    while (next < windows.length) {
      signal?.throwIfAborted()
      const range = core.download({ blocks: windows[next++] })
      active.add(range)
      try {
        await abortable(range.done(), signal)
      } finally {
        active.delete(range)
      }
    }
  }
  const workers = Math.max(1, Math.min(init.parallel ?? FETCH_PARALLEL, windows.length))
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
