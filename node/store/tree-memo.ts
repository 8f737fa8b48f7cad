/**
 * A memo of a feed's Merkle tree nodes in front of its storage reads, while the feed downloads.
 *
 * Why: hypercore 11's Merkle code reads tree nodes one storage read batch at a time
 * (`MerkleTree.missingNodes` walks up from each requested block's leaf with one `storage.read()`
 * per level; `verify` reads the stored node a proof ends at), and every read batch is a round trip
 * to RocksDB's thread pool, even an empty one (≈ 25–30 µs of CPU each, measured sequentially). A
 * 256 MiB download made ≈ 5,900 of them for ≈ 1,800 blocks. Here a read batch is opened only when a
 * lookup misses the memo:
 * - a node found in storage, or written by this feed's own write batches (once flushed), is kept:
 *   a stored tree node never changes while the feed's fork stays the same (the memo is dropped on a
 *   fork change and on any deletion of tree nodes);
 * - an index found absent is kept too, but that answer is used only by `hasTreeNode` (which
 *   `missingNodes` asks, to count the proof nodes to request), never by `getTreeNode` (which
 *   `verify` asks): a stale "absent" can only make a request ask for more proof nodes than needed
 *   (the peer sends them, they verify up to a stored ancestor), never make a valid block fail. An
 *   absence is recorded only when no tree write started or finished while it was read, and a
 *   node's put forgets it.
 */
import { TREE_MEMO_MAX_NODES, TREE_MEMO_PREFETCH_LEVELS, TREE_MEMO_SLAB_BYTES } from './constants.ts'

/** A tree node as hypercore stores it. */
export interface TreeNode {
  index: number
  size: number
  hash: Uint8Array
}

/** The read batch hypercore-storage returns (`CoreRX`), as far as hypercore uses it. */
export interface CoreReadBatch {
  getTreeNode(index: number): Promise<TreeNode | null>
  hasTreeNode(index: number): Promise<boolean>
  getBlock(index: number): Promise<Buffer | null>
  getBitfieldPage(index: number): Promise<Buffer | null>
  getAuth(): Promise<unknown>
  getSessions(): Promise<unknown>
  getHead(): Promise<unknown>
  getDependency(): Promise<unknown>
  getGroup(): Promise<unknown>
  getHints(): Promise<unknown>
  getUserData(key: string): Promise<unknown>
  getMark(index: number): Promise<unknown>
  getLocal(key: unknown): Promise<unknown>
  tryFlush(): void
  destroy(): void
}

/** The write batch's tree methods wrapped here. */
export interface CoreWriteBatch {
  putTreeNode(node: TreeNode): void
  deleteTreeNode(index: number): void
  deleteTreeNodeRange(start: number, end: number): void
  flush(): Promise<unknown>
}

/** Tree nodes of one feed known present or absent in its storage. */
export class TreeMemo {
  /** Whether lookups use the memo (a download into a staging file is running). */
  active = false
  /** Read batches opened / lookups answered from the memo, since the store started (tests, benchmarks). */
  batches = 0
  hits = 0
  private readonly present = new Map<number, TreeNode>()
  private readonly absent = new Set<number>()
  /** Reads under way that `hasTreeNode` lookups of the same index share (see `pending`). */
  private readonly inflight = new Map<number, Promise<TreeNode | null>>()
  /** Bumped whenever nodes may have been deleted (deletion, failed flush, fork change): a read across it is not kept. */
  private gen = 0
  private fork = 0
  private slab = Buffer.alloc(0)
  private slabUsed = 0
  private readonly forkOf: () => number

  constructor(forkOf: () => number) {
    this.forkOf = forkOf
  }

  /** Starts (or stops, forgetting everything) answering lookups from the memo. */
  setActive(on: boolean): void {
    this.active = on
    if (!on) this.clear()
  }

  /** Wraps a read batch factory (`storage.read`). */
  wrapRead(open: (...args: unknown[]) => CoreReadBatch): (...args: unknown[]) => CoreReadBatch {
    return (...args: unknown[]) => {
      // hypercore's Merkle reads pass no fork; reads at a given fork go to storage as they are
      if (!this.active || (args.length > 0 && args[0] !== undefined && args[0] !== -1)) {
        this.batches++
        return open(...args)
      }
      const fork = this.forkOf()
      if (fork !== this.fork) {
        this.clear()
        this.fork = fork
      }
      return new MemoReadBatch(this, () => {
        this.batches++
        return open(...args)
      })
    }
  }

  /** Wraps one write batch so its tree changes update the memo. */
  wrapWrite(tx: CoreWriteBatch): void {
    const put = tx.putTreeNode.bind(tx)
    const del = tx.deleteTreeNode.bind(tx)
    const delRange = tx.deleteTreeNodeRange.bind(tx)
    const flush = tx.flush.bind(tx)
    let nodes: TreeNode[] | null = null
    let deletes = false
    tx.putTreeNode = (node: TreeNode) => {
      this.absent.delete(node.index)
      nodes ??= []
      nodes.push(node)
      put(node)
    }
    tx.deleteTreeNode = (index: number) => {
      deletes = true
      this.clear()
      del(index)
    }
    tx.deleteTreeNodeRange = (start: number, end: number) => {
      deletes = true
      this.clear()
      delRange(start, end)
    }
    tx.flush = () => {
      if (nodes === null && !deletes) return flush()
      const written = nodes
      const cleared = deletes
      nodes = null
      deletes = false
      return flush().then(
        (r) => {
          if (cleared) this.clear()
          else if (this.active && written !== null) for (const n of written) this.remember(this.own(n))
          return r
        },
        (err: unknown) => {
          this.clear()
          throw err
        },
      )
    }
  }

  /** A node known present, or undefined. */
  node(index: number): TreeNode | undefined {
    return this.present.get(index)
  }

  /** A read of `index` under way for `hasTreeNode`, or undefined. */
  pending(index: number): Promise<TreeNode | null> | undefined {
    return this.inflight.get(index)
  }

  /** Notes a read of `index` under way, for concurrent `hasTreeNode` lookups to share. */
  share(index: number, read: Promise<TreeNode | null>): void {
    this.inflight.set(index, read)
    const done = () => {
      if (this.inflight.get(index) === read) this.inflight.delete(index)
    }
    read.then(done, done)
  }

  /** Whether `index` was read absent and no put of it came after. */
  isAbsent(index: number): boolean {
    return this.absent.has(index)
  }

  /** Where a read starts (see `settle`). */
  readStart(): number {
    return this.gen
  }

  /**
   * Records what a read of `index` that started at generation `gen` found. An absence read before a
   * put landed is not kept past it: the put's flush remembers the node (and forgets the absence)
   * when it completes, and an absence that settles after that is dropped as the node is known.
   */
  settle(index: number, node: TreeNode | null, gen: number): void {
    if (!this.active || gen !== this.gen) return
    if (node !== null) this.remember(node)
    else if (!this.present.has(index)) {
      if (this.absent.size + this.present.size >= TREE_MEMO_MAX_NODES) this.clear()
      this.absent.add(index)
    }
  }

  /**
   * A copy of a written node whose hash lives in the memo's own slab: a node hypercore writes holds
   * its hash as a view of whatever it came in (a proof node: the whole received message, ≈ a block),
   * and keeping that view would keep the message (measured: +100 MiB peak RSS per 256 MiB).
   */
  private own(node: TreeNode): TreeNode {
    const n = node.hash.byteLength
    if (this.slabUsed + n > this.slab.byteLength) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(TREE_MEMO_SLAB_BYTES, n))
      this.slabUsed = 0
    }
    const hash = this.slab.subarray(this.slabUsed, this.slabUsed + n)
    hash.set(node.hash)
    this.slabUsed += n
    return { index: node.index, size: node.size, hash }
  }

  private remember(node: TreeNode): void {
    if (this.absent.size + this.present.size >= TREE_MEMO_MAX_NODES) this.clear()
    this.absent.delete(node.index)
    this.present.set(node.index, node)
  }

  private clear(): void {
    this.gen++
    this.slab = Buffer.alloc(0)
    this.slabUsed = 0
    this.present.clear()
    this.absent.clear()
    this.inflight.clear()
  }
}

/**
 * A read batch that answers tree lookups from the memo and opens the storage's read batch only for
 * a miss or any other read; `tryFlush` flushes it if it was opened.
 */
class MemoReadBatch implements CoreReadBatch {
  private real: CoreReadBatch | null = null
  private flushed = false
  private readonly memo: TreeMemo
  private readonly open: () => CoreReadBatch

  constructor(memo: TreeMemo, open: () => CoreReadBatch) {
    this.memo = memo
    this.open = open
  }

  getTreeNode(index: number): Promise<TreeNode | null> {
    const n = this.memo.node(index)
    if (n !== undefined) {
      this.memo.hits++
      return Promise.resolve(n)
    }
    return this.read(index)
  }

  hasTreeNode(index: number): Promise<boolean> {
    if (this.memo.node(index) !== undefined) {
      this.memo.hits++
      return Promise.resolve(true)
    }
    if (this.memo.isAbsent(index)) {
      this.memo.hits++
      return Promise.resolve(false)
    }
    const shared = this.memo.pending(index)
    if (shared !== undefined) {
      this.memo.hits++
      // a shared read that failed (its batch destroyed) is not this lookup's answer: read again
      return shared.then(
        (n) => n !== null,
        () => this.read(index).then((n) => n !== null),
      )
    }
    const read = this.read(index)
    this.memo.share(index, read)
    // the walk asks the parents next, each in a batch of its own: read the unknown ones in this batch
    let a = index
    for (let i = 0; i < TREE_MEMO_PREFETCH_LEVELS; i++) {
      a = parentOf(a)
      if (this.memo.node(a) !== undefined || this.memo.isAbsent(a) || this.memo.pending(a) !== undefined) continue
      const ahead = this.read(a)
      this.memo.share(a, ahead)
      ahead.catch(() => {}) // nobody may ask for it; an error reaches whoever does
    }
    return read.then((n) => n !== null)
  }

  getBlock(index: number): Promise<Buffer | null> {
    return this.use((rx) => rx.getBlock(index))
  }
  getBitfieldPage(index: number): Promise<Buffer | null> {
    return this.use((rx) => rx.getBitfieldPage(index))
  }
  getAuth(): Promise<unknown> {
    return this.use((rx) => rx.getAuth())
  }
  getSessions(): Promise<unknown> {
    return this.use((rx) => rx.getSessions())
  }
  getHead(): Promise<unknown> {
    return this.use((rx) => rx.getHead())
  }
  getDependency(): Promise<unknown> {
    return this.use((rx) => rx.getDependency())
  }
  getGroup(): Promise<unknown> {
    return this.use((rx) => rx.getGroup())
  }
  getHints(): Promise<unknown> {
    return this.use((rx) => rx.getHints())
  }
  getUserData(key: string): Promise<unknown> {
    return this.use((rx) => rx.getUserData(key))
  }
  getMark(index: number): Promise<unknown> {
    return this.use((rx) => rx.getMark(index))
  }
  getLocal(key: unknown): Promise<unknown> {
    return this.use((rx) => rx.getLocal(key))
  }

  tryFlush(): void {
    this.flushed = true
    const rx = this.real
    this.real = null
    rx?.tryFlush()
  }

  destroy(): void {
    const rx = this.real
    this.real = null
    rx?.destroy()
  }

  private read(index: number): Promise<TreeNode | null> {
    const epoch = this.memo.readStart()
    return this.use((rx) => rx.getTreeNode(index)).then((n) => {
      this.memo.settle(index, n, epoch)
      return n
    })
  }

  /** Runs `fn` on the storage's read batch (opened now if needed; after `tryFlush`, a fresh one flushed at once). */
  private use<T>(fn: (rx: CoreReadBatch) => Promise<T>): Promise<T> {
    if (this.flushed) {
      const rx = this.open()
      const p = fn(rx)
      rx.tryFlush()
      return p
    }
    this.real ??= this.open()
    return fn(this.real)
  }
}

/** The parent of flat-tree index `i` (hypercore's tree layout: leaves even, a node's depth = its trailing 1 bits). */
export function parentOf(i: number): number {
  let depth = 0
  while (Math.floor(i / 2 ** depth) % 2 === 1) depth++
  const offset = Math.floor(i / 2 ** (depth + 1))
  return Math.floor(offset / 2) * 2 ** (depth + 2) + 2 ** (depth + 1) - 1
}
