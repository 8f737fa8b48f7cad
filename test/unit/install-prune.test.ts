import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Installer } from '../../node/install/installer.ts'
import { retention } from '../../node/install/prune.ts'
import { silentLogger } from '../../node/logger.ts'
import { releaseBlocks } from '../../node/store/fetcher.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { cleanup, connectAll, startPeer } from '../mesh/distribution-helpers.ts'
import { makeRelease } from './install-fixtures.ts'

describe('block pruning', () => {
  test('GC frees the blocks only removed versions used; kept versions and the seed keep theirs', async () => {
    const seed = await startPeer('prune-seed')
    const dev = await startPeer('prune-dev')
    try {
      await connectAll([seed, dev])
      const installer = new Installer(
        { store: dev.store, logger: silentLogger() },
        { dataDir: dev.dataDir, keepVersions: 1 },
      )
      await installer.start()
      const f1 = join(seed.dataDir, 'v1.gguf')
      const f2 = join(seed.dataDir, 'v2.gguf')
      await writeTinyGguf(f1, { layers: 4, embd: 192, seed: 3 })
      await writeTinyGguf(f2, { layers: 4, embd: 192, seed: 3, perturbLayer: 1 })
      const m1 = await makeRelease(seed.store, 'tiny', '1.0.0', f1)
      await installer.prestage(m1)
      const m2 = await makeRelease(seed.store, 'tiny', '2.0.0', f2)
      await installer.prestage(m2) // keep 1: v1 goes, and with it the blocks only v1 used
      assert.deepEqual((await installer.status()).tiny.staged, ['2.0.0'])
      const v2 = new Set(releaseBlocks(m2.chunks))
      const onlyV1 = releaseBlocks(m1.chunks).filter((b) => !v2.has(b))
      assert.ok(onlyV1.length > 0)
      const core = await dev.store.feed(m2.chunks.feed)
      for (const b of onlyV1) assert.equal(await core.has(b), false, `block ${b} of v1 only still held`)
      for (const b of v2) assert.equal(await core.has(b), true, `block ${b} of v2 cleared`)
      const seedCore = await seed.store.lineage('tiny')
      for (const b of onlyV1) assert.equal(await seedCore.has(b), true)
    } finally {
      await cleanup([seed, dev])
    }
  })
})

describe('retention', () => {
  test('pinned versions always stay, then the newest up to the limit', () => {
    const all = ['5.0.0', '4.0.0', '3.0.0', '2.0.0', '1.0.0']
    assert.deepEqual(retention(all, 3, [null, undefined]).remove, ['2.0.0', '1.0.0'])
    // active 1.0.0 and previous 2.0.0 pinned: only one slot left, for the newest
    const r = retention(all, 3, ['1.0.0', '2.0.0', undefined])
    assert.deepEqual([...r.keep].sort(), ['1.0.0', '2.0.0', '5.0.0'])
    assert.deepEqual(r.remove, ['4.0.0', '3.0.0'])
    // more pins than the limit: all pins kept, nothing else
    assert.deepEqual(retention(all, 1, ['1.0.0', '3.0.0', '4.0.0']).remove, ['5.0.0', '2.0.0'])
  })
})
