import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { fetchRelease } from '../../node/store/fetcher.ts'
import { PROTOCOL_REPLICATE, PROTOCOL_REPLICATE_V1 } from '../../protocols/constants.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { within } from '../helpers/index.ts'
import { cleanup, connectAll, startPeer } from '../mesh/distribution-helpers.ts'

describe('replicator', () => {
  test('start/stop are idempotent; sessions open per connected peer and close on stop', async () => {
    const a = await startPeer('ra')
    const b = await startPeer('rb')
    try {
      await a.replicator.start()
      assert.ok(a.libp2p.getProtocols().includes(PROTOCOL_REPLICATE))
      await connectAll([a, b])
      const f = join(a.dataDir, 'm.gguf')
      await writeTinyGguf(f, { layers: 2, embd: 64 })
      const r = await a.store.appendFile('tiny', f)
      await within(fetchRelease(b.store, r.chunks), 60_000, 'b fetching the release')
      assert.deepEqual(a.replicator.activePeers(), [b.libp2p.peerId.toString()])
      assert.ok(b.replicator.stats().bytesIn >= r.size)
      await a.replicator.stop()
      await a.replicator.stop()
      assert.deepEqual(a.replicator.activePeers(), [])
      assert.ok(!a.libp2p.getProtocols().includes(PROTOCOL_REPLICATE))
    } finally {
      await cleanup([a, b])
    }
  })

  test('a node not yet upgraded (replication v1 only) and an upgraded one replicate over v1; two upgraded ones over v2', async () => {
    const old = await startPeer('rold', undefined, { protocols: [PROTOCOL_REPLICATE_V1] })
    const a = await startPeer('rnew')
    const b = await startPeer('rnew2')
    const protocolsTo = (p: typeof a, q: typeof a) =>
      p.libp2p
        .getConnections(q.libp2p.peerId)
        .flatMap((c) => c.streams.map((s) => s.protocol))
        .filter((x) => x?.startsWith('/llmesh/replicate/'))
    try {
      await connectAll([a, old, b])
      const f = join(a.dataDir, 'm.gguf')
      await writeTinyGguf(f, { layers: 2, embd: 64 })
      const r = await a.store.appendFile('tiny', f)
      // a hang here once cost CI its 900 s file timeout (a wakeup hypercore missed: peer-choice.ts's nudge)
      await within(fetchRelease(old.store, r.chunks), 60_000, 'the v1 node fetching the release')
      await within(fetchRelease(b.store, r.chunks), 60_000, 'the v2 node fetching the release')
      assert.deepEqual(protocolsTo(a, old), [PROTOCOL_REPLICATE_V1])
      assert.deepEqual(protocolsTo(a, b), [PROTOCOL_REPLICATE])
      assert.equal(old.replicator.stats().invalidBlocks + b.replicator.stats().invalidBlocks, 0)
    } finally {
      await cleanup([a, old, b])
    }
  })

  test('fetch can be aborted while no peer holds the blocks', async () => {
    const a = await startPeer('rc')
    const b = await startPeer('rd')
    try {
      const f = join(a.dataDir, 'm.gguf')
      await writeTinyGguf(f, { layers: 2, embd: 64 })
      const r = await a.store.appendFile('tiny', f)
      const ac = new AbortController()
      setTimeout(() => ac.abort(new Error('gave up')), 300)
      await assert.rejects(fetchRelease(b.store, r.chunks, { signal: ac.signal }), /gave up/)
    } finally {
      await cleanup([a, b])
    }
  })
})
