/**
 * The tree memo in front of a downloading feed's storage reads (node/store/tree-memo.ts): lookups
 * it knows open no read batch; an absence it remembers answers `hasTreeNode` only, never
 * `getTreeNode`; a put, a deletion or a fork change is never hidden by it.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  type CoreReadBatch,
  type CoreWriteBatch,
  parentOf,
  TreeMemo,
  type TreeNode,
} from '../../node/store/tree-memo.ts'

/** A feed's tree in memory behind read and write batches shaped like hypercore-storage's. */
class FakeStorage {
  readonly nodes = new Map<number, TreeNode>()
  /** Read batches opened, and those flushed. */
  opened = 0
  flushed = 0
  /** Gets each read batch held when flushed. */
  readonly gets: number[] = []

  read(): CoreReadBatch {
    this.opened++
    const waiting: Array<() => void> = []
    const get = (index: number) =>
      new Promise<TreeNode | null>((resolve) => waiting.push(() => resolve(this.nodes.get(index) ?? null)))
    const unused = () => Promise.reject(new Error('not used here'))
    return {
      getTreeNode: get,
      hasTreeNode: (i) => get(i).then((n) => n !== null),
      getBlock: unused,
      getBitfieldPage: unused,
      getAuth: unused,
      getSessions: unused,
      getHead: unused,
      getDependency: unused,
      getGroup: unused,
      getHints: unused,
      getUserData: unused,
      getMark: unused,
      getLocal: unused,
      tryFlush: () => {
        this.flushed++
        this.gets.push(waiting.length)
        // RocksDB answers on its thread pool, after the caller's turn
        setImmediate(() => {
          for (const w of waiting) w()
        })
      },
      destroy: () => {},
    }
  }

  write(): CoreWriteBatch {
    const puts: TreeNode[] = []
    const dels: Array<[number, number]> = []
    return {
      putTreeNode: (n) => puts.push(n),
      deleteTreeNode: (i) => dels.push([i, i + 1]),
      deleteTreeNodeRange: (s, e) => dels.push([s, e]),
      flush: async () => {
        await new Promise((r) => setImmediate(r))
        for (const n of puts) this.nodes.set(n.index, n)
        for (const [s, e] of dels) for (const i of [...this.nodes.keys()]) if (i >= s && i < e) this.nodes.delete(i)
        return true
      },
    }
  }
}

function node(index: number): TreeNode {
  return { index, size: 1, hash: Buffer.alloc(32, index) }
}

/** A memo on `storage`, active, and its wrapped read/write factories; `fork` is what the feed's fork reads as. */
function setup(fork = { value: 0 }) {
  const storage = new FakeStorage()
  const memo = new TreeMemo(() => fork.value)
  memo.setActive(true)
  const read = memo.wrapRead(() => storage.read())
  const write = () => {
    const tx = storage.write()
    memo.wrapWrite(tx)
    return tx
  }
  return { storage, memo, read, write, fork }
}

/** One lookup as hypercore's Merkle code makes it: a read batch, one call, tryFlush. */
function get(read: () => CoreReadBatch, index: number): Promise<TreeNode | null> {
  const rx = read()
  const p = rx.getTreeNode(index)
  rx.tryFlush()
  return p
}
function has(read: () => CoreReadBatch, index: number): Promise<boolean> {
  const rx = read()
  const p = rx.hasTreeNode(index)
  rx.tryFlush()
  return p
}

describe('tree memo', () => {
  test('parentOf is the flat-tree parent', () => {
    const want: Array<[number, number]> = [
      [0, 1],
      [2, 1],
      [1, 3],
      [5, 3],
      [4, 5],
      [3, 7],
      [11, 7],
      [7, 15],
      [23, 15],
      [8, 9],
      [9, 11],
    ]
    for (const [i, p] of want) assert.equal(parentOf(i), p, `parent of ${i}`)
  })

  test('a node written or read once is answered without a read batch', async () => {
    const { storage, read, write } = setup()
    const tx = write()
    tx.putTreeNode(node(4))
    await tx.flush()
    storage.nodes.set(8, node(8)) // stored before this process (a resumed download)
    assert.equal((await get(read, 8))?.index, 8)
    const opened = storage.opened
    assert.equal((await get(read, 4))?.index, 4)
    assert.equal((await get(read, 8))?.index, 8)
    assert.equal(await has(read, 4), true)
    assert.equal(storage.opened, opened, 'no read batch for known nodes')
  })

  test("hasTreeNode reads a missed node's ancestors in the same batch, and the walk up asks no more batches", async () => {
    const { storage, read } = setup()
    storage.nodes.set(7, node(7))
    // hypercore's missingNodes from leaf 0: 0, 1, 3 absent, 7 present
    assert.equal(await has(read, 0), false)
    assert.equal(storage.opened, 1)
    assert.ok(storage.gets[0] > 1, 'ancestors read in the same batch')
    assert.equal(await has(read, 1), false)
    assert.equal(await has(read, 3), false)
    assert.equal(await has(read, 7), true)
    assert.equal(storage.opened, 1)
  })

  test('a remembered absence never answers getTreeNode', async () => {
    const { storage, read } = setup()
    assert.equal(await has(read, 2), false)
    // written by a path the memo does not see: getTreeNode (verify) must still find it
    storage.nodes.set(2, node(2))
    assert.equal((await get(read, 2))?.index, 2)
  })

  test('a put forgets the absence, and an absence read before a put is not kept', async () => {
    const { read, write } = setup()
    assert.equal(await has(read, 6), false)
    const tx = write()
    tx.putTreeNode(node(6))
    // read while the write is under way: storage still lacks it
    assert.equal(await has(read, 6), false)
    await tx.flush()
    assert.equal(await has(read, 6), true)
  })

  test('deletions and a fork change forget what the memo knew', async () => {
    const fork = { value: 0 }
    const { storage, read, write } = setup(fork)
    const tx = write()
    tx.putTreeNode(node(10))
    await tx.flush()
    const del = write()
    del.deleteTreeNodeRange(8, 16)
    await del.flush()
    assert.equal(await get(read, 10), null)
    storage.nodes.set(12, node(12))
    assert.equal((await get(read, 12))?.index, 12)
    storage.nodes.set(12, { ...node(12), size: 2 }) // a truncation and a new fork, seen through the fork
    fork.value = 1
    assert.equal((await get(read, 12))?.size, 2)
  })

  test('inactive (no download running) it only passes reads through', async () => {
    const { storage, memo, read, write } = setup()
    memo.setActive(false)
    const tx = write()
    tx.putTreeNode(node(4))
    await tx.flush()
    await get(read, 4)
    await get(read, 4)
    assert.equal(storage.opened, 2)
  })
})
