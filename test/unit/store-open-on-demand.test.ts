/**
 * A device's store opened on demand (ModelStore `openOnDemand`, node/store/store-open.ts): a store
 * that holds nothing is not opened by `start()` (RocksDB not loaded, no store directory) nor by a
 * peer that dials a replication session; the first fetch opens it and the waiting session serves
 * it; a store that holds blocks opens at start and serves a peer at once, as before.
 */
import assert from 'node:assert/strict'
import { access, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { STORE_DIR } from '../../node/store/constants.ts'
import { fetchRelease } from '../../node/store/fetcher.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { Replicator } from '../../node/store/replicator.ts'
import { scaled, tmpDir, waitFor } from '../helpers/index.ts'
import { quietLogger } from '../mesh/distribution-helpers.ts'

const rocksdbLoaded = async () => /rocksdb/i.test(await readFile('/proc/self/maps', 'utf8'))
const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  )

/** A loopback peer with `key`, its store (`openOnDemand` as given) and replicator. */
async function peer(
  key: PrivateKey,
  dataDir: string,
  openOnDemand: boolean,
  isFleetPeer?: (peerId: string) => boolean,
) {
  const libp2p = await createLibp2p({
    privateKey: key,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  })
  const store = new ModelStore({ dataDir, openOnDemand })
  await store.start()
  const replicator = new Replicator({ libp2p, store, logger: quietLogger }, { redialMs: 300, isFleetPeer })
  await replicator.start()
  return {
    libp2p,
    store,
    replicator,
    id: libp2p.peerId.toString(),
    async stop() {
      await replicator.stop()
      await libp2p.stop()
      await store.stop()
    },
  }
}

/** `fetchRelease` with a deadline; on timeout the message names both replicators' sessions. */
async function fetchFrom(to: Peer, from: Peer, index: Awaited<ReturnType<typeof release>>) {
  try {
    return await fetchRelease(to.store, index, { signal: AbortSignal.timeout(scaled(20_000)) })
  } catch (err) {
    const sessions = (p: Peer) => JSON.stringify(p.replicator.stats().peers)
    throw new Error(
      `fetch ${to.id < from.id ? 'by the lower id' : 'by the higher id'} from ${from.store.isOpen ? 'an open' : 'a closed'} store: ${(err as Error).message}; sessions ${sessions(to)}; ${sessions(from)}`,
    )
  }
}

type Peer = Awaited<ReturnType<typeof peer>>

/** Two keys, the one whose peer id sorts lower (the dialer of a replication session) first. */
async function keysByOrder(): Promise<[PrivateKey, PrivateKey]> {
  const a = await generateKeyPair('Ed25519')
  const b = await generateKeyPair('Ed25519')
  return peerIdFromPrivateKey(a).toString() < peerIdFromPrivateKey(b).toString() ? [a, b] : [b, a]
}

/** A release of `blocks` blocks appended to the seed's lineage; its chunk index. */
async function release(seed: ModelStore, dir: string, blocks = 40) {
  const f = join(dir, 'model.bin')
  await writeFile(
    f,
    Buffer.alloc(blocks * 64 * 1024, 7).map((_, i) => (i * 2654435761) >>> 24),
  )
  return (await seed.appendFile('m', f)).chunks
}

describe('store opened on demand', () => {
  test('an empty store is not opened by start(): RocksDB not loaded, no store directory; feed() opens it', async (t) => {
    const dir = await tmpDir(t, 'llmesh-lazy-')
    const store = new ModelStore({ dataDir: dir, openOnDemand: true })
    t.after(() => store.stop())
    await store.start()
    assert.equal(store.isOpen, false)
    assert.equal(await exists(join(dir, STORE_DIR)), false, 'store directory created')
    assert.equal(await rocksdbLoaded(), false, 'RocksDB loaded by start() of an empty store')
    assert.throws(() => store.store, /not started/)
    let opened = 0
    store.onOpen(() => {
      opened++
    })
    // two callers at once (e.g. a prestage and an operator's fetch) share one opening of the feed
    const [core, same] = await Promise.all([store.feed('ab'.repeat(32)), store.feed('ab'.repeat(32))])
    assert.equal(same, core, 'the feed was opened (and tuned) twice')
    assert.equal(store.isOpen, true)
    assert.equal(opened, 1)
    assert.equal(core.length, 0)
    assert.equal(await rocksdbLoaded(), true)
    await store.stop()
    // once it held a feed, the directory is not empty: the next start opens it at once
    const again = new ModelStore({ dataDir: dir, openOnDemand: true })
    t.after(() => again.stop())
    await again.start()
    assert.equal(again.isOpen, true)
  })

  for (const order of ['the seed dials', 'the device dials'] as const) {
    test(`a device with an empty store leaves a peer's session waiting, then fetches through it (${order})`, {
      timeout: scaled(60_000),
    }, async (t) => {
      const dir = await tmpDir(t, 'llmesh-lazy-rep-')
      const [low, high] = await keysByOrder()
      const seed = await peer(order === 'the seed dials' ? low : high, join(dir, 'seed'), false)
      t.after(() => seed.stop())
      const index = await release(seed.store, dir)
      const device = await peer(order === 'the seed dials' ? high : low, join(dir, 'device'), true)
      t.after(() => device.stop())
      await device.libp2p.dial(seed.libp2p.getMultiaddrs()[0])
      if (order === 'the seed dials') {
        await waitFor(() => device.replicator.stats().peers[seed.id]?.state === 'waiting', {
          timeoutMs: scaled(10_000),
          what: "the seed's session accepted and waiting",
        })
      } else {
        await new Promise((r) => setTimeout(r, 500)) // a dial would be immediate: give it the chance
        assert.equal(device.replicator.stats().peers[seed.id], undefined, 'the device dialed with its store closed')
      }
      assert.equal(device.store.isOpen, false, 'a peer opened the store')
      assert.equal(await exists(join(dir, 'device', STORE_DIR)), false)
      const core = await fetchFrom(device, seed, index)
      assert.equal(core.contiguousLength, index.feed_length)
      assert.deepEqual(device.replicator.activePeers(), [seed.id])
    })
  }

  test('a device whose store holds blocks opens it at start and serves a peer right away', {
    timeout: scaled(60_000),
  }, async (t) => {
    const dir = await tmpDir(t, 'llmesh-lazy-held-')
    const [k1, k2] = await keysByOrder()
    const seed = await peer(await generateKeyPair('Ed25519'), join(dir, 'seed'), false)
    const index = await release(seed.store, dir)
    // the holder fetches the release, stops, and starts again; the seed is gone
    let holder = await peer(k2, join(dir, 'holder'), true)
    await holder.libp2p.dial(seed.libp2p.getMultiaddrs()[0])
    await fetchFrom(holder, seed, index)
    await holder.stop()
    await seed.stop()
    holder = await peer(k2, join(dir, 'holder'), true)
    t.after(() => holder.stop())
    assert.equal(holder.store.isOpen, true, 'a store holding blocks was not opened at start')
    // as the daemon's installer start does for the versions it holds (adoptInstalled): the feed is
    // open, not only found by corestore when a peer asks (such a core is idle and can be closed)
    await holder.store.feed(index.feed)
    // the other device (lower id: it dials; its own store opens for the fetch) gets every block from the holder
    const other = await peer(k1, join(dir, 'other'), true)
    t.after(() => other.stop())
    await other.libp2p.dial(holder.libp2p.getMultiaddrs()[0])
    const core = await fetchFrom(other, holder, index)
    assert.equal(core.contiguousLength, index.feed_length)
    const size = index.chunks.reduce((n, c) => n + c.size, 0)
    assert.ok(holder.replicator.stats().bytesOut >= size, 'served by the restarted holder')
  })

  test('a device with its store closed counts its connected fleet peers as sessions to come (peer choice starts capped)', {
    timeout: scaled(60_000),
  }, async (t) => {
    // the first device whose store opens for a release sees the seed's session alone; counting only
    // open streams, peer choice took it for a lone device and asked the seed for hypercore's 48
    // blocks (the seed then uploaded 1.23xF in a fan-out run, docs/benchmarks.md)
    const dir = await tmpDir(t, 'llmesh-lazy-expected-')
    const outsider = await peer(await generateKeyPair('Ed25519'), join(dir, 'outsider'), false)
    t.after(() => outsider.stop())
    const seed = await peer(await generateKeyPair('Ed25519'), join(dir, 'seed'), false)
    t.after(() => seed.stop())
    const other = await peer(await generateKeyPair('Ed25519'), join(dir, 'other'), true)
    t.after(() => other.stop())
    const device = await peer(await generateKeyPair('Ed25519'), join(dir, 'device'), true, (p) => p !== outsider.id)
    t.after(() => device.stop())
    for (const p of [seed, other, outsider]) await device.libp2p.dial(p.libp2p.getMultiaddrs()[0])
    await waitFor(() => device.libp2p.getPeers().length === 3, { timeoutMs: scaled(10_000), what: '3 peers connected' })
    assert.equal(device.store.isOpen, false)
    assert.equal(device.store.peersExpected(), 2, 'the seed and the other device; not the peer outside the fleet')
    assert.equal(device.store.replicationSessions(), 2, 'what peer choice counts, with no stream open yet')
    await device.replicator.stop()
    assert.equal(device.store.peersExpected(), 0, 'a stopped replicator expects no session')
  })
})
