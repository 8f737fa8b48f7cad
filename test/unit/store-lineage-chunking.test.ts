import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { chunkBuffer } from '../../node/store/chunker.ts'
import {
  LEGACY_CHUNKING,
  lineageChunking,
  NEW_LINEAGE_CHUNKING,
  recordedChunking,
} from '../../node/store/lineage-chunking.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { makeTinyGgufBuffer } from '../fixtures/gguf-writer.ts'

let dir: string
let store: ModelStore

describe('chunk parameters of a lineage', () => {
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lineage-chunking-'))
    store = new ModelStore({ dataDir: dir })
    await store.start()
  })
  afterEach(async () => {
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  })

  test('the defaults differ (otherwise nothing below tells them apart)', () => {
    assert.notDeepEqual(NEW_LINEAGE_CHUNKING, LEGACY_CHUNKING)
  })

  test('a new lineage gets the new-lineage parameters, recorded on the feed and kept after a restart', async () => {
    const v1 = makeTinyGgufBuffer({ layers: 4, embd: 256, seed: 3 })
    await writeFile(join(dir, 'v1'), v1)
    const a = await store.appendFile('fresh', join(dir, 'v1'))
    assert.deepEqual(a.chunks.chunking, NEW_LINEAGE_CHUNKING)
    assert.deepEqual(
      a.chunks.chunks.map((c) => c.hash),
      chunkBuffer(v1, NEW_LINEAGE_CHUNKING).map((c) => c.hash),
    )
    await store.stop()
    await store.start()
    assert.deepEqual(await recordedChunking(await store.lineage('fresh')), NEW_LINEAGE_CHUNKING)
  })

  test('a lineage started with 16/64/256 KiB keeps them: its next release reuses its chunks', async () => {
    const v1 = makeTinyGgufBuffer({ layers: 4, embd: 256, seed: 9 })
    const v2 = makeTinyGgufBuffer({ layers: 4, embd: 256, seed: 9, perturbLayer: 2 })
    await writeFile(join(dir, 'v1'), v1)
    await writeFile(join(dir, 'v2'), v2)
    const a = await store.appendFile('old', join(dir, 'v1'), { chunking: LEGACY_CHUNKING })
    await store.stop()
    await store.start()
    const b = await store.appendFile('old', join(dir, 'v2'))
    assert.deepEqual(b.chunks.chunking, LEGACY_CHUNKING)
    assert.deepEqual(
      b.chunks.chunks.map((c) => c.hash),
      chunkBuffer(v2, LEGACY_CHUNKING).map((c) => c.hash),
    )
    assert.ok(b.newChunks > 0 && b.newChunks < b.chunks.chunks.length / 2, `${b.newChunks} new chunks`)
    assert.ok(b.newBytes < v2.length / 2, `${b.newBytes} new bytes of ${v2.length}`)
    assert.equal(b.chunks.feed, a.chunks.feed)
  })

  test('a feed published before lineages recorded their parameters is taken as 16/64/256 KiB and recorded so', async () => {
    const v1 = makeTinyGgufBuffer({ layers: 2, embd: 256, seed: 5 })
    const v2 = makeTinyGgufBuffer({ layers: 2, embd: 256, seed: 5, perturbLayer: 1 })
    await writeFile(join(dir, 'v2'), v2)
    // what an older seed left: blocks of the chunker's defaults, no record
    const core = await store.lineage('legacy')
    await core.append(chunkBuffer(v1, LEGACY_CHUNKING).map((c) => c.data))
    assert.equal(await recordedChunking(core), null)
    const b = await store.appendFile('legacy', join(dir, 'v2'))
    assert.deepEqual(b.chunks.chunking, LEGACY_CHUNKING)
    assert.ok(b.newChunks < b.chunks.chunks.length / 2, `${b.newChunks} of ${b.chunks.chunks.length} chunks new`)
    assert.deepEqual(await recordedChunking(core), LEGACY_CHUNKING)
  })

  test("a caller's explicit parameters win without changing the lineage's record", async () => {
    const core = await store.lineage('explicit')
    const many = { min: 1024, avg: 4096, max: 16384 }
    assert.deepEqual(await lineageChunking(core), NEW_LINEAGE_CHUNKING)
    assert.deepEqual(await lineageChunking(core, many), { algo: 'fastcdc', ...many })
    assert.deepEqual(await recordedChunking(core), NEW_LINEAGE_CHUNKING)
    assert.deepEqual(await lineageChunking(core), NEW_LINEAGE_CHUNKING)
  })

  test('explicit parameters of a new lineage become its own', async () => {
    const core = await store.lineage('small-blocks')
    const many = { min: 1024, avg: 4096, max: 16384 }
    await lineageChunking(core, many)
    assert.deepEqual(await lineageChunking(core), { algo: 'fastcdc', ...many })
  })

  test('an unreadable record is not trusted: the lineage is judged by its blocks again', async () => {
    const core = await store.lineage('garbled')
    await core.setUserData('llmesh/chunking', 'not json')
    assert.equal(await recordedChunking(core), null)
    assert.deepEqual(await lineageChunking(core), NEW_LINEAGE_CHUNKING)
    assert.deepEqual(await recordedChunking(core), NEW_LINEAGE_CHUNKING)
  })
})
