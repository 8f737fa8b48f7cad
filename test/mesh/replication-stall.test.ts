/**
 * A download stalled by a peer that stops answering resumes (loopback, real libp2p and hypercore).
 * Hypercore keeps a block request in flight to a peer until that peer answers or its session
 * ends, so a peer that silently drops requests (a zombie session after its process was killed,
 * a peer hypercore has paused) stalls the download for good. The installer's stall signal makes
 * the replicator restart every session (`recycleOnStall`, as the distribution wires it): the new
 * session starts clean and the download completes.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { recycleOnStall } from '../../node/install/distribution.ts'
import { Installer } from '../../node/install/installer.ts'
import { silentLogger } from '../../node/logger.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled } from '../helpers/index.ts'
import { makeRelease } from '../unit/install-fixtures.ts'
import { cleanup, connectAll, startPeer, type TestPeer } from './distribution-helpers.ts'

/** Hypercore's replicator internals touched to inject the fault. */
interface HypercorePeer {
  onrequest: (msg: unknown) => Promise<void>
}
interface HypercoreReplicator {
  _addPeer(peer: HypercorePeer): void
}

describe('a stalled download', { timeout: scaled(120_000) }, () => {
  const peers: TestPeer[] = []
  after(() => cleanup(peers))

  test('a peer that stops answering: the stall restarts the sessions and the download completes', async (t) => {
    const seed = await startPeer('seed')
    const device = await startPeer('dev')
    peers.push(seed, device)
    const file = join(seed.dataDir, 'v1.gguf')
    await writeTinyGguf(file, { layers: 3, embd: 256, seed: 5 })
    const m = await makeRelease(seed.store, 'tiny', '1.0.0', file)

    // the seed's first session for the feed drops every request without answering
    const core = await seed.store.lineage('tiny')
    const rep = (core as unknown as { replicator: HypercoreReplicator }).replicator
    const addPeer = rep._addPeer.bind(rep)
    let sessions = 0
    let dropped = 0
    rep._addPeer = (peer) => {
      if (sessions++ === 0) {
        peer.onrequest = async () => {
          dropped++
        }
      }
      addPeer(peer)
    }

    const installer = new Installer(
      { store: device.store, logger: silentLogger() },
      { dataDir: device.dataDir, stallMs: 1000 },
    )
    await installer.start()
    t.after(() => installer.stop())
    const off = recycleOnStall(installer, device.replicator)
    await connectAll([seed, device])
    const path = await installer.prestage(m)

    assert.deepEqual(await readFile(path), await readFile(file))
    assert.ok(dropped > 0, 'the fault was injected: the first session dropped requests')
    assert.ok(sessions >= 2, `the feed was replicated again in a new session (${sessions})`)
    assert.ok(device.replicator.stats().recycles >= 1, 'the device restarted its sessions')
    off()
  })
})
