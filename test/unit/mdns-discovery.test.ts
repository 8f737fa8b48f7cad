/**
 * mDNS discovery (node/discovery/mdns-rules.ts, mdns-discovery.ts): the backing-off query schedule
 * and the filter between the answers heard and libp2p's peer store, with a fake inner discovery
 * (no multicast here: the LAN tier runs the real one in network namespaces).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { type PeerInfo, TypedEventEmitter } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  MDNS_FORWARDS_PER_WINDOW,
  MDNS_INTERVAL_MS,
  MDNS_MAX_ADDRS,
  MDNS_MAX_INTERVAL_MS,
  MDNS_REFRESH_MS,
} from '../../node/constants.ts'
import { MdnsDiscovery, type MdnsDiscoveryComponents, MdnsStats } from '../../node/discovery/mdns-discovery.ts'
import { MdnsAnswerFilter, nextQueryInterval } from '../../node/discovery/mdns-rules.ts'

describe('mDNS query schedule (pure)', () => {
  test('doubles from the base up to the cap, and starts over on restart', () => {
    const seq: number[] = []
    let i: number | undefined
    for (let n = 0; n < 7; n++) {
      i = nextQueryInterval(i, false, 5_000, 60_000)
      seq.push(i)
    }
    assert.deepEqual(seq, [5_000, 10_000, 20_000, 40_000, 60_000, 60_000, 60_000])
    assert.equal(nextQueryInterval(60_000, true, 5_000, 60_000), 5_000)
  })
})

describe('mDNS answer filter (pure)', () => {
  const init = { refreshMs: 1_000, maxPeers: 3, perWindow: 4, windowMs: 100 }

  test('a peer is handed on when new, changed or due for a refresh; repeats are not', () => {
    const f = new MdnsAnswerFilter(init)
    assert.equal(f.decide('a', '/ip4/1', 0), 'new')
    assert.equal(f.decide('a', '/ip4/1', 200), 'repeat')
    assert.equal(f.decide('a', '/ip4/2', 300), 'changed')
    assert.equal(f.decide('a', '/ip4/2', 1_200), 'repeat', 'the refresh counts from the last hand-on (300)')
    assert.equal(f.decide('a', '/ip4/2', 1_300), 'refreshed')
    f.forget('a')
    assert.equal(f.decide('a', '/ip4/2', 1_400), 'new', 'forgotten: handed on again')
  })

  test('at most perWindow hand-ons per window; repeats are never limited', () => {
    const f = new MdnsAnswerFilter({ ...init, maxPeers: 100 })
    const got = Array.from({ length: 6 }, (_, i) => f.decide(`p${i}`, 'x', 10))
    assert.deepEqual(got, ['new', 'new', 'new', 'new', 'limited', 'limited'])
    assert.equal(f.decide('p0', 'x', 20), 'repeat')
    assert.equal(f.decide('p4', 'x', 110), 'new', 'a new window: the dropped peer is heard at its next answer')
  })

  test('remembers at most maxPeers, the least recently heard forgotten first', () => {
    const f = new MdnsAnswerFilter({ ...init, perWindow: 100 })
    for (const p of ['a', 'b', 'c']) f.decide(p, 'x', 0)
    f.decide('a', 'x', 1) // heard again: now the most recent
    f.decide('d', 'x', 2) // evicts b
    assert.equal(f.size, 3)
    assert.equal(f.decide('a', 'x', 3), 'repeat')
    assert.equal(f.decide('b', 'x', 4), 'new', 'b was forgotten')
  })
})

/** A fake @libp2p/mdns: counts starts, stops and queries; `answer()` emits a `peer` event. */
class FakeInner extends TypedEventEmitter<{ peer: CustomEvent<PeerInfo> }> {
  starts = 0
  stops = 0
  queries = 0
  readonly mdns: { query: () => unknown } = { query: () => this.queries++ }
  start(): void {
    this.starts++
  }
  stop(): void {
    this.stops++
  }
  answer(info: PeerInfo): void {
    this.safeDispatchEvent('peer', { detail: info })
  }
}

function bed() {
  const inner = new FakeInner()
  const events = new TypedEventEmitter<Record<string, CustomEvent<unknown>>>()
  const state = { connections: 1, addrs: ['/ip4/10.0.0.1/tcp/4001'] }
  const components = {
    logger: { forComponent: () => Object.assign(() => {}, { error: () => {}, trace: () => {} }) },
    addressManager: { getAddresses: () => state.addrs.map((a) => multiaddr(a)) },
    connectionManager: { getConnections: () => Array.from({ length: state.connections }) },
    events,
  } as unknown as MdnsDiscoveryComponents
  const stats = new MdnsStats()
  let now = 0
  const d = new MdnsDiscovery(components, {
    serviceTag: '_t._udp.local',
    stats,
    inner: () => inner as never,
    now: () => now,
  })
  const heard: PeerInfo[] = []
  d.addEventListener('peer', (e) => heard.push(e.detail))
  return { d, inner, events, state, stats, heard, setNow: (t: number) => (now = t) }
}

/** Advances the mocked clock in 1 s steps (one tick fires the timers due, not those they set). */
function advance(t: { mock: { timers: { tick(ms: number): void } } }, ms: number): void {
  for (let left = ms; left > 0; left -= 1_000) t.mock.timers.tick(Math.min(1_000, left))
}

async function peer() {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

describe('mDNS discovery', () => {
  test('queries back off while the node has peers, and stop ends them', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const { d, inner, stats } = bed()
    await d.start()
    await d.start()
    assert.equal(inner.starts, 1, 'start is idempotent')
    assert.equal(stats.queries, 1, "the inner discovery's start sends the first query")
    const at: number[] = []
    let elapsed = 0
    for (let s = 0; s < 300; s++) {
      t.mock.timers.tick(1_000)
      elapsed += 1_000
      if (inner.queries > at.length) at.push(elapsed)
    }
    const b = MDNS_INTERVAL_MS
    assert.deepEqual(at.slice(0, 4), [b, 3 * b, 7 * b, 15 * b], 'intervals 5, 10, 20, 40 s')
    const gaps = at.slice(1).map((x, i) => x - at[i])
    assert.equal(Math.max(...gaps), MDNS_MAX_INTERVAL_MS, 'never longer than the cap')
    assert.equal(gaps.at(-1), MDNS_MAX_INTERVAL_MS)
    assert.equal(stats.queries, 1 + inner.queries)
    await d.stop()
    await d.stop()
    assert.equal(inner.stops, 1, 'stop is idempotent')
    const n = inner.queries
    advance(t, 10 * MDNS_MAX_INTERVAL_MS)
    assert.equal(inner.queries, n, 'no query after stop')
  })

  test('a node without peers keeps the first interval; losing its last peer starts over', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const { d, inner, events, state } = bed()
    state.connections = 0
    await d.start()
    advance(t, 10 * MDNS_INTERVAL_MS)
    assert.equal(inner.queries, 10, 'lonely: every 5 s')
    state.connections = 2
    advance(t, MDNS_INTERVAL_MS * 60)
    const slow = inner.queries
    assert.ok(slow - 10 <= 8, `backed off with peers: ${slow - 10} queries in 300 s (60 at a fixed 5 s)`)
    assert.equal(d.currentIntervalMs, MDNS_MAX_INTERVAL_MS)
    state.connections = 1
    events.safeDispatchEvent('peer:disconnect', { detail: 'p' })
    assert.equal(d.currentIntervalMs, MDNS_MAX_INTERVAL_MS, 'one peer left: no restart')
    state.connections = 0
    events.safeDispatchEvent('peer:disconnect', { detail: 'q' })
    advance(t, MDNS_INTERVAL_MS)
    assert.equal(inner.queries, slow + 1, 'the last peer gone: the next query 5 s later')
    await d.stop()
  })

  test('a query that throws is counted and the schedule goes on', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const { d, inner, stats } = bed()
    await d.start()
    let calls = 0
    inner.mdns.query = () => {
      calls++
      throw new Error('socket closed')
    }
    advance(t, MDNS_INTERVAL_MS)
    assert.equal(calls, 1)
    assert.equal(stats.queryFailures, 1)
    assert.equal(stats.queries, 1, 'only the first (start) query was sent')
    advance(t, 2 * MDNS_INTERVAL_MS)
    assert.equal(calls, 2, 'the next query was still scheduled')
    assert.equal(stats.queryFailures, 2)
    await d.stop()
  })

  test('a change of its own addresses restarts the schedule; an update without one does not', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const { d, inner, events, state } = bed()
    await d.start()
    advance(t, MDNS_INTERVAL_MS * 40) // backed off to the cap
    const n = inner.queries
    events.safeDispatchEvent('self:peer:update', { detail: {} })
    advance(t, MDNS_INTERVAL_MS)
    assert.equal(inner.queries, n, 'same addresses: still at the long interval')
    state.addrs = ['/ip4/10.0.0.9/tcp/4001']
    events.safeDispatchEvent('self:peer:update', { detail: {} })
    advance(t, MDNS_INTERVAL_MS)
    assert.equal(inner.queries, n + 1, 'new addresses: asked again within 5 s')
    await d.stop()
  })

  test('answers reach libp2p once per peer and address set, a refresh later, and never past the window', async () => {
    const { d, inner, stats, heard, setNow } = bed()
    await d.start()
    const a = await peer()
    const addrs = Array.from({ length: MDNS_MAX_ADDRS + 4 }, (_, i) => multiaddr(`/ip4/10.0.0.2/tcp/${4000 + i}`))
    for (let i = 0; i < 5; i++) inner.answer({ id: a, multiaddrs: addrs })
    assert.equal(heard.length, 1, 'five identical answers: one hand-on')
    assert.equal(heard[0].multiaddrs.length, MDNS_MAX_ADDRS, 'addresses capped')
    inner.answer({ id: a, multiaddrs: [multiaddr('/ip4/10.0.0.3/tcp/4001')] })
    assert.equal(heard.length, 2, 'changed addresses are handed on')
    setNow(MDNS_REFRESH_MS)
    inner.answer({ id: a, multiaddrs: [multiaddr('/ip4/10.0.0.3/tcp/4001')] })
    assert.equal(heard.length, 3, 'refreshed after MDNS_REFRESH_MS')
    assert.deepEqual(stats.answers, { new: 1, changed: 1, refreshed: 1, repeat: 4, limited: 0 })
    // a flood of forged answers for made-up peers: at most a window's worth reaches libp2p
    const forged = await Promise.all(Array.from({ length: MDNS_FORWARDS_PER_WINDOW + 20 }, () => peer()))
    for (const id of forged) inner.answer({ id, multiaddrs: [multiaddr('/ip4/10.6.6.6/tcp/1')] })
    assert.equal(stats.answers.limited, 21, "the refresh had opened the window: 199 of the flood's 220 fit")
    assert.equal(heard.length, 2 + MDNS_FORWARDS_PER_WINDOW)
    await d.stop()
  })
})
