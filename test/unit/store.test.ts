import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { chunkBuffer } from '../../node/store/chunker.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { makeTinyGgufBuffer } from '../fixtures/gguf-writer.ts'

let dir: string
let store: ModelStore

describe('model store', () => {
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'store-'))
    store = new ModelStore({ dataDir: dir })
    await store.start()
    await store.start() // idempotent
  })
  afterEach(async () => {
    await store.stop()
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  })

  test('a release appends only chunks the lineage lacks; reused chunks point at existing blocks', async () => {
    const v1 = makeTinyGgufBuffer({ layers: 4, embd: 256, seed: 9 })
    const v2 = makeTinyGgufBuffer({ layers: 4, embd: 256, seed: 9, perturbLayer: 2 })
    await writeFile(join(dir, 'v1'), v1)
    await writeFile(join(dir, 'v2'), v2)
    const a = await store.appendFile('tiny', join(dir, 'v1'))
    assert.equal(a.newChunks, new Set(a.chunks.chunks.map((c) => c.hash)).size)
    assert.equal(a.chunks.feed_length, a.newChunks)
    assert.equal(a.size, v1.length)
    const b = await store.appendFile('tiny', join(dir, 'v2'))
    assert.equal(b.chunks.feed, a.chunks.feed, 'one feed per lineage')
    assert.ok(b.newChunks > 0 && b.newChunks < b.chunks.chunks.length / 2, `${b.newChunks} new chunks`)
    assert.equal(b.chunks.feed_length, a.chunks.feed_length + b.newChunks)
    const oldBlocks = new Map(a.chunks.chunks.map((c) => [c.hash, c.block]))
    for (const c of b.chunks.chunks) {
      if (oldBlocks.has(c.hash)) assert.equal(c.block, oldBlocks.get(c.hash))
      else assert.ok(c.block >= a.chunks.feed_length)
    }
    // same chunk list as the chunker, and the feed's blocks rebuild the file
    assert.deepEqual(
      b.chunks.chunks.map((c) => c.hash),
      chunkBuffer(v2, b.chunks.chunking).map((c) => c.hash),
    )
    const core = await store.feed(b.chunks.feed)
    const parts: Buffer[] = []
    for (const c of b.chunks.chunks) parts.push((await core.get(c.block, { wait: false })) as Buffer)
    assert.deepEqual(Buffer.concat(parts), v2)
    // re-publishing the same file appends nothing
    const again = await store.appendFile('tiny', join(dir, 'v2'))
    assert.equal(again.newChunks, 0)
  })

  test('the chunk index survives a restart (rebuilt from the feed)', async () => {
    const v1 = makeTinyGgufBuffer({ layers: 2, embd: 128, seed: 4 })
    await writeFile(join(dir, 'v1'), v1)
    const a = await store.appendFile('tiny', join(dir, 'v1'))
    await store.stop()
    store = new ModelStore({ dataDir: dir })
    await store.start()
    const lineage = await store.lineage('tiny')
    assert.equal(lineage.key.toString('hex'), a.chunks.feed, 'same writable feed after restart')
    const b = await store.appendFile('tiny', join(dir, 'v1'))
    assert.equal(b.newChunks, 0)
    assert.deepEqual(b.chunks, a.chunks)
  })
})
