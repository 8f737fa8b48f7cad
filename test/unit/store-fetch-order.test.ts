import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { blockRuns } from '../../node/store/block-runs.ts'
import { downloadBlocks, shuffled } from '../../node/store/fetcher.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { tmpDir } from '../helpers/index.ts'

describe('fetch order', () => {
  test('blockRuns groups a block list into sorted contiguous runs', () => {
    assert.deepEqual(blockRuns([]), [])
    assert.deepEqual(blockRuns([7]), [[7, 8]])
    assert.deepEqual(blockRuns([5, 0, 1, 2, 9, 6, 2, 10, 12]), [
      [0, 3],
      [5, 7],
      [9, 11],
      [12, 13],
    ])
  })

  test('shuffled is a permutation, leaves its input alone, and differs between calls', () => {
    const xs = Array.from({ length: 200 }, (_, i) => i)
    const a = shuffled(xs)
    const b = shuffled(xs)
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      xs,
    )
    assert.deepEqual(xs[0], 0)
    assert.deepEqual(xs[199], 199)
    // two devices must not fetch in the same order (chance of equal orders: 1/200!)
    assert.notDeepEqual(a, b)
    assert.notDeepEqual(a, xs)
  })
})

describe('downloadBlocks', () => {
  test('fetches exactly the listed blocks (several runs at once) from a replicating peer', async (t) => {
    const dir = await tmpDir(t, 'llmesh-fetch-')
    const a = new ModelStore({ dataDir: join(dir, 'a') })
    const b = new ModelStore({ dataDir: join(dir, 'b') })
    try {
      await a.start()
      await b.start()
      const src = await a.lineage('m')
      await src.append(Array.from({ length: 40 }, (_, i) => Buffer.from(`block ${i}`)))
      const s1 = a.store.replicate(true)
      const s2 = b.store.replicate(false)
      s1.pipe(s2).pipe(s1)
      const dst = await b.feed(src.key.toString('hex'))
      await dst.update({ wait: true })
      const want = [3, 4, 5, 17, 30, 31, 39]
      await downloadBlocks(dst, want, undefined, { parallel: 2 })
      for (let i = 0; i < 40; i++) assert.equal(await dst.has(i), want.includes(i), `block ${i}`)
      assert.equal((await dst.get(17, { wait: false }))?.toString(), 'block 17')
      s1.destroy()
      s2.destroy()
    } finally {
      await b.stop()
      await a.stop()
    }
  })
})
