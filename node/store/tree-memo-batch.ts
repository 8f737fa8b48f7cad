/**
 * The read batch of a feed's tree memo (tree-memo.ts): tree lookups the memo knows are answered
 * without RocksDB; anything else opens the storage's own read batch (hypercore-storage's `CoreRX`).
 */
import { TREE_MEMO_PREFETCH_LEVELS } from './constants.ts'
import type { CoreReadBatch, MemoLookups, TreeNode } from './tree-memo-types.ts'

/**
 * A read batch that answers tree lookups from the memo and opens the storage's read batch only for
 * a miss or any other read; `tryFlush` flushes it if it was opened.
 */
export class MemoReadBatch implements CoreReadBatch {
  private real: CoreReadBatch | null = null
  private flushed = false
  private readonly memo: MemoLookups
  private readonly open: () => CoreReadBatch

  constructor(memo: MemoLookups, open: () => CoreReadBatch) {
    this.memo = memo
    this.open = open
  }

  getTreeNode(index: number): Promise<TreeNode | null> {
    const n = this.memo.node(index)
    if (n !== undefined) {
      return Promise.resolve(n)
    }
    return this.read(index)
  }

  hasTreeNode(index: number): Promise<boolean> {
    if (this.memo.node(index) !== undefined) {
      return Promise.resolve(true)
    }
    if (this.memo.isAbsent(index)) {
      return Promise.resolve(false)
    }
    const shared = this.memo.pending(index)
    if (shared !== undefined) {
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
