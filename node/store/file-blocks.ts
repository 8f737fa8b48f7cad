/**
 * File-backed blocks: one copy of a model on disk.
 *
 * How it works: once a release's file is assembled and verified, the installer hands it to the
 * store (`ModelStore.adoptFile`). Its blocks' bytes are then deleted from the corestore's block
 * storage, while the feed's Merkle tree and bitfield stay: the node still "has" those blocks, peers
 * still ask for them, and hypercore still proves them. Every block read of the feed (a local
 * `core.get`, or the replicator answering a peer) goes through the core's storage read batch; that
 * batch is wrapped so a block absent from storage is read from an installed file holding the same
 * chunk, at the chunk's offset. The bytes are not trusted for that: a peer receiving them verifies
 * them against the signed tree (a corrupt file only makes this node a refused sender), and local
 * readers check chunk hashes (fetcher) and the whole-file sha256 (assembly).
 *
 * While a release downloads, the same wrapper puts a memo of the feed's tree nodes in front of its
 * reads (tree-memo.ts): hypercore's Merkle code otherwise opens a RocksDB read batch per tree level.
 *
 * The write side (staging-file.ts): while a release downloads, the feed's storage write batches
 * are wrapped too, so verified blocks go straight into the release's staging file (registered here
 * as a source as soon as it exists, so peers are served from it during the download) and RocksDB
 * keeps only the Merkle tree and the bitfield.
 *
 * A block may live in several installed files (a chunk reused by a later version); the first
 * readable one answers. When a version is removed, its file is dropped from the map first, and
 * blocks no kept version uses are cleared from the feed (bitfield too) before its file goes.
 */
import { type FileHandle, open } from 'node:fs/promises'
import type Hypercore from 'hypercore'
import { type CoreReadBatch, type CoreWriteBatch, TreeMemo } from './tree-memo.ts'

/** What the storage wrapper (file-blocks.ts) hands verified blocks to. */
export interface BlockSink {
  /** Whether `block` (of `bytes` bytes) goes to this sink instead of RocksDB. */
  accepts(block: number, bytes: number): boolean
  /** Writes the blocks; resolves once every byte is written (before the storage batch is flushed). */
  put(blocks: ReadonlyArray<readonly [number, Buffer]>): Promise<void>
}

/** Where one block's bytes are in an installed file. */
export interface BlockLocation {
  path: string
  offset: number
  size: number
}

/** The chunk list fields this module reads. */
export interface FileChunk {
  block: number
  size: number
}

interface WriteBatch extends CoreWriteBatch {
  putBlock(index: number, data: Buffer): void
  deleteBlockRange(start: number, end: number): void
}
interface CoreStorage {
  read(...args: unknown[]): CoreReadBatch
  write(): WriteBatch
}

/** Hypercore internals touched here (hypercore 11: `core.core.storage`, shared by the default session state). */
function storageOf(core: Hypercore): CoreStorage {
  const inner = (core as unknown as { core?: { storage?: CoreStorage } }).core
  if (inner?.storage === undefined || typeof inner.storage.read !== 'function') {
    throw new Error('hypercore storage is not reachable (unsupported hypercore version)')
  }
  return inner.storage
}

/** Block → locations in installed files, per feed; wraps feeds' read paths to use them. */
export class FileBlocks {
  private readonly feeds = new Map<string, Map<number, BlockLocation[]>>()
  private readonly handles = new Map<string, Promise<FileHandle>>()
  private readonly attached = new WeakSet<object>()
  private readonly sinks = new Map<string, BlockSink>()
  /** Tree node memos of attached feeds (tree-memo.ts), answering while the feed has a sink. */
  private readonly memos = new Map<string, TreeMemo>()
  /** Verified blocks written to a sink (a release's staging file) instead of the corestore. */
  blocksToFile = 0

  /** From now on, verified blocks of `feed` that `sink` accepts are written to it, not to the corestore. */
  setSink(feed: string, sink: BlockSink): void {
    this.sinks.set(feed, sink)
    this.memos.get(feed)?.setActive(true)
  }

  /** Stops sending `feed`'s blocks to `sink` (no-op when another sink replaced it). */
  clearSink(feed: string, sink: BlockSink): void {
    if (this.sinks.get(feed) !== sink) return
    this.sinks.delete(feed)
    this.memos.get(feed)?.setActive(false)
  }

  /** Records that `path` holds the blocks of `chunks` (in file order). Idempotent per path. */
  register(feed: string, path: string, chunks: readonly FileChunk[]): void {
    let map = this.feeds.get(feed)
    if (map === undefined) {
      map = new Map()
      this.feeds.set(feed, map)
    }
    let offset = 0
    for (const c of chunks) {
      const locs = map.get(c.block) ?? []
      if (!locs.some((l) => l.path === path)) locs.push({ path, offset, size: c.size })
      map.set(c.block, locs)
      offset += c.size
    }
  }

  /** Forgets `path` (its version is being removed). */
  unregister(feed: string, path: string): void {
    const map = this.feeds.get(feed)
    if (map !== undefined) {
      for (const [block, locs] of map) {
        const rest = locs.filter((l) => l.path !== path)
        if (rest.length === 0) map.delete(block)
        else map.set(block, rest)
      }
    }
    this.dropHandle(path)
  }

  /** Blocks of `feed` that some installed file holds. */
  has(feed: string, block: number): boolean {
    return this.feeds.get(feed)?.has(block) ?? false
  }

  /** A block's bytes from an installed file, or null when no readable file holds it. */
  async read(feed: string, block: number): Promise<Buffer | null> {
    for (const loc of this.feeds.get(feed)?.get(block) ?? []) {
      try {
        const fh = await this.handle(loc.path)
        const buf = Buffer.allocUnsafe(loc.size)
        const { bytesRead } = await fh.read(buf, 0, loc.size, loc.offset)
        if (bytesRead === loc.size) return buf
      } catch {
        this.dropHandle(loc.path) // gone or unreadable: try the next copy
      }
    }
    return null
  }

  /**
   * Wraps the core's storage reads so blocks absent from storage come from installed files, and its
   * write batches so verified blocks a sink accepts go to the sink: the sink's writes complete before
   * the batch (tree nodes, bitfield) is flushed, so the bitfield never claims a block whose bytes
   * were not written. Idempotent.
   */
  attach(core: Hypercore): void {
    const storage = storageOf(core)
    if (this.attached.has(storage)) return
    this.attached.add(storage)
    const feed = core.key.toString('hex')
    const inner = (core as unknown as { core?: { state?: { fork?: number } } }).core
    const memo = new TreeMemo(() => inner?.state?.fork ?? 0)
    memo.setActive(this.sinks.has(feed))
    this.memos.set(feed, memo)
    const read = memo.wrapRead(storage.read.bind(storage))
    storage.read = (...args: unknown[]) => {
      const rx = read(...args)
      const getBlock = rx.getBlock.bind(rx)
      rx.getBlock = (index: number) =>
        getBlock(index).then((b) => (b === null && this.has(feed, index) ? this.read(feed, index) : b))
      return rx
    }
    const write = storage.write.bind(storage)
    storage.write = () => {
      const tx = write()
      memo.wrapWrite(tx)
      const putBlock = tx.putBlock.bind(tx)
      const flush = tx.flush.bind(tx)
      let pending: Array<readonly [number, Buffer]> | null = null
      let sink: BlockSink | undefined
      tx.putBlock = (index: number, data: Buffer) => {
        const s = this.sinks.get(feed)
        if (s !== undefined && (sink === undefined || sink === s) && s.accepts(index, data.byteLength)) {
          sink = s
          pending ??= []
          pending.push([index, data])
        } else putBlock(index, data)
      }
      tx.flush = () => {
        if (pending === null || sink === undefined) return flush()
        const blocks = pending
        pending = null
        return sink.put(blocks).then(() => {
          this.blocksToFile += blocks.length
          return flush()
        })
      }
      return tx
    }
  }

  /**
   * Deletes the bytes of `blocks` from the core's block storage (bitfield and tree kept), then
   * compacts so the space is returned. Call only once every block is in a registered, verified file.
   */
  async strip(core: Hypercore, runs: readonly [number, number][]): Promise<void> {
    if (runs.length === 0) return
    const tx = storageOf(core).write()
    for (const [start, end] of runs) tx.deleteBlockRange(start, end)
    await tx.flush()
    await core.compact()
  }

  /** Closes cached file handles. */
  async close(): Promise<void> {
    const hs = [...this.handles.values()]
    this.handles.clear()
    await Promise.allSettled(hs.map(async (h) => (await h).close()))
  }

  private handle(path: string): Promise<FileHandle> {
    let h = this.handles.get(path)
    if (h === undefined) {
      h = open(path, 'r')
      this.handles.set(path, h)
      h.catch(() => this.handles.delete(path))
    }
    return h
  }

  private dropHandle(path: string): void {
    const h = this.handles.get(path)
    this.handles.delete(path)
    h?.then((fh) => fh.close()).catch(() => {})
  }
}
