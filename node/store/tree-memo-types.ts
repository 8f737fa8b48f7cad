/**
 * The types the tree memo (tree-memo.ts) and its read batch (tree-memo-batch.ts) share: hypercore's
 * tree node and storage batches as far as they are used, and what the read batch asks the memo.
 */

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

/** What a memo read batch asks its memo (tree-memo.ts `TreeMemo`). */
export interface MemoLookups {
  /** A node known present, or undefined. */
  node(index: number): TreeNode | undefined
  /** Whether `index` was read absent and no put of it came after. */
  isAbsent(index: number): boolean
  /** A read of `index` under way for `hasTreeNode`, or undefined. */
  pending(index: number): Promise<TreeNode | null> | undefined
  /** Notes a read of `index` under way, for concurrent `hasTreeNode` lookups to share. */
  share(index: number, read: Promise<TreeNode | null>): void
  /** Where a read starts (see `settle`). */
  readStart(): number
  /** Records what a read of `index` that started at generation `gen` found. */
  settle(index: number, node: TreeNode | null, gen: number): void
}
