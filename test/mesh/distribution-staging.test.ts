/**
 * Blocks straight into the file (issue #17 goal 2): a device's download writes every verified
 * block into the release's staging file, not into RocksDB (the corestore grows only by the Merkle
 * tree and the bitfield while it runs), and a download resumed after a crash that lost bytes the
 * bitfield claims clears and fetches them again, ending with the verified file.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { open, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { Installer } from '../../node/install/installer.ts'
import { silentLogger } from '../../node/logger.ts'
import { blockInventory, releaseBlocks } from '../../node/store/fetcher.ts'
import { makeRelease } from '../unit/install-fixtures.ts'
import { cleanup, connectAll, startPeer, type TestPeer } from './distribution-helpers.ts'

const MIB = 1024 * 1024

/** Bytes allocated under `dir` (du -sk), synchronously: taken at an exact point of the download. */
function duSync(dir: string): number {
  return Number(execFileSync('du', ['-sk', dir]).toString().split('\t')[0]) * 1024
}

/** RocksDB read batches of a peer's corestore so far (rocksdb-native's own count). */
function readBatches(peer: TestPeer): number {
  const db = (peer.store.store as unknown as { storage: { db: { _state: { stats: { readBatches: number } } } } })
    .storage.db
  return db._state.stats.readBatches
}

describe('downloads written straight into the file', () => {
  const peers: TestPeer[] = []
  after(() => cleanup(peers))

  test('every downloaded block goes to the staging file; the corestore grows by ≪ the bytes fetched', async () => {
    const seed = await startPeer('seed-staging')
    const dev = await startPeer('dev-staging')
    peers.push(seed, dev)
    const src = join(seed.dataDir, 'v1.bin')
    await writeFile(src, randomBytes(24 * MIB))
    const m = await makeRelease(seed.store, 'raw', '1.0.0', src)
    await connectAll([seed, dev])
    const inst = new Installer({ store: dev.store, logger: silentLogger() }, { dataDir: dev.dataDir })
    await inst.start()
    const storeDir = join(dev.dataDir, 'store')
    const before = duSync(storeDir)
    const total = releaseBlocks(m.chunks).length
    const core = await dev.store.feed(m.chunks.feed)
    let got = 0
    let bytes = 0
    let sample: { bytes: number; growth: number } | null = null
    core.on('download', (_i: number, n: number) => {
      got++
      bytes += n
      if (sample === null && got >= total * 0.8) sample = { bytes, growth: duSync(storeDir) - before }
    })
    const batches0 = readBatches(dev)
    const path = await inst.prestage(m)
    assert.deepEqual(await readFile(path), await readFile(src))
    assert.equal(dev.store.files.blocksToFile, total, 'blocks written to the staging file instead of RocksDB')
    // hypercore walks the tree one read batch per level (≈ 4.6 batches per block); the tree memo
    // (node/store/tree-memo.ts) answers most of those lookups and reads the rest ahead
    const batches = readBatches(dev) - batches0
    assert.ok(batches < 1.5 * total, `${batches} RocksDB read batches for ${total} blocks`)
    const s = sample as { bytes: number; growth: number } | null
    assert.ok(s !== null, 'sampled during the download')
    // through RocksDB the blocks would sit in blob files after memtable flushes (8 MiB memtables)
    assert.ok(s.growth < 0.2 * s.bytes, `store grew ${s.growth} B while ${s.bytes} B arrived`)
  })

  test('a resumed download whose file lost claimed bytes clears and refetches them', async () => {
    const seed = await startPeer('seed-resume')
    const dev = await startPeer('dev-resume')
    peers.push(seed, dev)
    const src = join(seed.dataDir, 'v1.bin')
    await writeFile(src, randomBytes(16 * MIB))
    const m = await makeRelease(seed.store, 'raw', '1.0.0', src)
    await connectAll([seed, dev])
    const first = new Installer({ store: dev.store, logger: silentLogger() }, { dataDir: dev.dataDir })
    await first.start()
    const core = await dev.store.feed(m.chunks.feed)
    const total = releaseBlocks(m.chunks).length
    let got = 0
    // cut at a third, from the download event itself (as a crash would leave it: staging file, download.json, bitfield)
    const stopped = new Promise<void>((resolve) => {
      core.on('download', () => {
        if (++got === Math.ceil(total / 3)) resolve(first.stop())
      })
    })
    const run = first.prestage(m).then(
      () => null,
      (e: unknown) => e,
    )
    await stopped
    assert.ok((await run) instanceof Error, 'the download was cut short')
    const staging = first.layout.staging('raw', '1.0.0')
    const { have } = await blockInventory(core, releaseBlocks(m.chunks))
    assert.ok(have.length > 0 && have.length < total, `${have.length} of ${total} blocks held`)
    // a power loss: bytes of a block the bitfield claims never reached the file
    let offset = 0
    const lost = m.chunks.chunks.find((c) => {
      if (have.includes(c.block)) return true
      offset += c.size
      return false
    })
    assert.ok(lost !== undefined)
    const fh = await open(staging, 'r+')
    await fh.write(Buffer.alloc(lost.size), 0, lost.size, offset)
    await fh.close()
    const toFile = dev.store.files.blocksToFile
    const fetched = new Set<number>()
    core.on('download', (i: number) => fetched.add(i))
    const second = new Installer({ store: dev.store, logger: silentLogger() }, { dataDir: dev.dataDir })
    await second.start()
    const path = await second.prestage(m)
    assert.deepEqual(await readFile(path), await readFile(src), 'the installed file is the release')
    const refetched = dev.store.files.blocksToFile - toFile
    assert.ok(refetched <= total - have.length + 1, `resumed: ${refetched} blocks fetched again for ${total}`)
    assert.ok(fetched.has(lost.block), `the lost block ${lost.block} was fetched again`)
  })
})
