/**
 * A memo of a feed's Merkle tree nodes in front of its storage reads, while the feed downloads into
 * a staging file (file-blocks.ts turns it on with the feed's sink and off, emptied, with it).
 *
 * Why: hypercore 11's Merkle code reads tree nodes one storage read batch at a time
 * (`MerkleTree.missingNodes` walks up from each requested block's leaf with one `storage.read()`
 * per level; `verify` reads the stored node a proof ends at), and every read batch is a round trip
 * to RocksDB's thread pool, even an empty one (≈ 25–30 µs of CPU each, measured sequentially). A
 * 256 MiB download made ≈ 5,900 of them for ≈ 1,800 blocks (4.6 per block). Here a read batch is
 * opened only when a lookup misses the memo (tree-memo-batch.ts):
 * - a node found in storage, or written by this feed's own write batches (once flushed), is kept:
 *   a stored tree node never changes while the feed's fork stays the same; the memo is emptied on a
 *   fork change, on any deletion of tree nodes and on a failed flush, and nothing read across one of
 *   those is kept;
 * - an index found absent is kept too, but that answer is used only by `hasTreeNode` (which
 *   `missingNodes` asks, to count the proof nodes to request), never by `getTreeNode` (which
 *   `verify` asks): a stale "absent" can only make a request ask for more proof nodes than needed
 *   (the peer sends them, they verify up to a stored ancestor), never make a valid block fail. A
 *   put forgets the absence, and its flush remembers the node;
 * - a `hasTreeNode` miss also reads the node's next unknown ancestors in the same read batch (the
 *   walk asks for them next), and concurrent `hasTreeNode` lookups of one index share one read (the
 *   walks of the requests hypercore sends at once meet on the same parents); `getTreeNode` never
 *   shares a read under way.
 * Measured: 0.8 read batches per downloaded block instead of 4.6 (docs/benchmarks.md, "the tree
 * memo").
 */
import { TREE_MEMO_MAX_NODES, TREE_MEMO_SLAB_BYTES } from './constants.ts'
import { MemoReadBatch } from './tree-memo-batch.ts'
import type { CoreReadBatch, CoreWriteBatch, MemoLookups, TreeNode } from './tree-memo-types.ts'

export { parentOf } from './tree-memo-batch.ts'
export type { CoreReadBatch, CoreWriteBatch, TreeNode } from './tree-memo-types.ts'

/** Tree nodes of one feed known present or absent in its storage. */
export class TreeMemo implements MemoLookups {
  /** Whether lookups use the memo (a download into a staging file is running). */
  active = false
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
        return open(...args)
      }
      const fork = this.forkOf()
      if (fork !== this.fork) {
        this.clear()
        this.fork = fork
      }
      return new MemoReadBatch(this, () => open(...args))
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
