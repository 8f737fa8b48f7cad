/**
 * The pure rules of node/store/peer-choice.ts (super-seeding from the requester's side, the seed's
 * once-only decline); the wiring into hypercore is covered by test/mesh/distribution-fanout.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  PEER_CHOICE_HOLDER_INFLIGHT,
  PEER_CHOICE_HOLDER_LATENCY_MS,
  PEER_CHOICE_ORIGIN_INFLIGHT,
  PEER_CHOICE_START_GRACE_MS,
} from '../../node/store/constants.ts'
import {
  type ChoicePeer,
  expectHolders,
  heldByHolder,
  installPeerChoice,
  isHolder,
  isOrigin,
  maxInflight,
  nextHolderCap,
  pickOriginBlock,
  shouldDecline,
} from '../../node/store/peer-choice.ts'

/** A stub peer holding `blocks` (or the whole feed up to `contiguous`). */
function peer(blocks: number[], opts: { contiguous?: number; inflight?: number; active?: boolean } = {}): ChoicePeer {
  const has = new Set(blocks)
  const contiguous = opts.contiguous ?? 0
  return {
    _remoteContiguousLength: contiguous,
    inflight: opts.inflight ?? 0,
    isActive: () => opts.active ?? true,
    _remoteHasBlock: (i) => i < contiguous || has.has(i),
  }
}

/** hypercore's `_findNext` over a set of candidate blocks: the first candidate ≥ from, or -1. */
function nextOf(candidates: number[]): (from: number) => number {
  const sorted = [...candidates].sort((a, b) => a - b)
  return (from) => sorted.find((i) => i >= from) ?? -1
}

describe('peer choice rules', () => {
  test('an origin holds the whole feed; a holder is an active, delivering peer with part of it', () => {
    const seed = peer([], { contiguous: 100 })
    assert.equal(isOrigin(seed, 100), true)
    assert.equal(isOrigin(seed, 101), false, 'the feed grew: not whole any more')
    assert.equal(isOrigin(peer([]), 0), false, 'an empty feed has no origin')
    assert.equal(isHolder(seed, 100, 0, 0, 5000), false, 'an origin is not a holder')
    assert.equal(isHolder(peer([1, 2]), 100, 0, 0, 5000), true)
    assert.equal(isHolder(peer([]), 100, 0, 0, 5000), true, 'a device with nothing yet is a holder (it will hold)')
    assert.equal(isHolder(peer([1], { active: false }), 100, 0, 0, 5000), false, 'paused (e.g. sent a bad block)')
    // requests in flight: a holder while it delivers, not once it stalls
    const busy = peer([1, 2], { inflight: 3 })
    assert.equal(isHolder(busy, 100, 10_000, 14_999, 5000), true)
    assert.equal(isHolder(busy, 100, 10_000, 15_000, 5000), false)
    assert.equal(isHolder(peer([1], { inflight: 0 }), 100, 0, 1e9, 5000), true, 'idle, nothing asked: not stalled')
  })

  test('origins and holders are capped only while other holders exist', () => {
    const seed = peer([], { contiguous: 100 })
    const caps = { origin: 4, holder: 8 }
    assert.equal(maxInflight(seed, 100, 3, 48, caps), 4)
    assert.equal(maxInflight(seed, 100, 0, 48, caps), 48, 'a lone device asks the seed at the full rate')
    assert.equal(maxInflight(peer([1]), 100, 3, 48, caps), 8)
    assert.equal(maxInflight(peer([1]), 100, 0, 48, caps), 48, 'the only holder (with or without an origin)')
    assert.equal(maxInflight(seed, 100, 3, 2, caps), 2, 'never above the stock limit')
    assert.equal(maxInflight(seed, 100, 0, 48, caps, true), 4, 'holders expected: the origin capped already')
    assert.equal(maxInflight(peer([1]), 100, 0, 48, caps, true), 48, 'holders expected: a holder alone is not')
  })

  test('holders are expected only early in a download, while sessions have not joined the feed', () => {
    const grace = PEER_CHOICE_START_GRACE_MS
    assert.equal(expectHolders(1000, 1000, grace, 8, 1), true, 'the download just started, 7 sessions not on the feed')
    assert.equal(expectHolders(1000 + grace - 1, 1000, grace, 8, 1), true)
    assert.equal(expectHolders(1000 + grace, 1000, grace, 8, 1), false, 'the grace is over: a lone device after all')
    assert.equal(expectHolders(1000, 1000, grace, 1, 1), false, 'one to one: never')
    assert.equal(expectHolders(1000, 1000, grace, 8, 8), false, 'every session on the feed')
    assert.equal(expectHolders(1000, undefined, grace, 8, 1), false, 'no download')
  })

  test('an origin is asked only for blocks no holder has', () => {
    const holders = [peer([0, 1, 2, 5]), peer([3, 7])]
    assert.equal(heldByHolder(holders, 3), true)
    assert.equal(heldByHolder(holders, 4), false)
    const next = nextOf([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    const avoid = (i: number) => heldByHolder(holders, i)
    const picks = new Set<number>()
    for (let k = 0; k < 200; k++) picks.add(pickOriginBlock(0, 10, next, avoid))
    assert.deepEqual(
      [...picks].sort((a, b) => a - b),
      [4, 6, 8, 9],
      'every block no holder has, and only those',
    )
    // from a start after the last free block, the search wraps to the range start
    assert.equal(
      pickOriginBlock(0, 10, next, avoid, () => 0.95),
      9,
    )
    assert.equal(
      pickOriginBlock(
        0,
        10,
        nextOf([0, 1, 2, 4]),
        (i) => heldByHolder(holders, i) || i === 4,
        () => 0.99,
      ),
      -1,
    )
    assert.equal(
      pickOriginBlock(5, 5, next, () => false),
      -1,
      'empty range',
    )
    // the range bounds hold: nothing below start or at/after end
    for (let k = 0; k < 100; k++) {
      const i = pickOriginBlock(4, 8, next, avoid)
      assert.ok(i === 4 || i === 6, `picked ${i}`)
    }
  })

  test('the seed declines a duplicate once per peer and block, never to the first recipient', () => {
    const a = 'a'
    const b = 'b'
    const up = (p: string) => p === a || p === b
    assert.equal(shouldDecline(b, a, up, false), true, 'uploaded to a, b asks: b can get it from a')
    assert.equal(shouldDecline(b, a, up, true), false, 'b asks again: served (no starvation)')
    assert.equal(shouldDecline(a, a, up, false), false, 'a asks again (e.g. it lost the block): served')
    assert.equal(shouldDecline(b, undefined, up, false), false, 'never uploaded: served')
    assert.equal(shouldDecline(b, 'gone', up, false), false, 'the first recipient left: served')
  })

  test('wired: a holder is asked for at most PEER_CHOICE_HOLDER_INFLIGHT blocks while another holder is connected', () => {
    const seed = { ...peer([], { contiguous: 10 }) }
    const a = { ...peer([1]) }
    const b = { ...peer([2]) }
    const replicator = {
      destroyed: false,
      peers: [seed, a] as ChoicePeer[],
      _ranges: [],
      core: { state: { length: 10, fork: 0 } },
      _addPeer() {},
      _ondata() {},
      _onnodata() {},
      _onupload() {},
      updateAll() {},
      addRange() {},
    }
    const noop = () => false
    for (const p of [seed, a, b]) {
      Object.assign(p, { getMaxInflight: () => 48, _requestRange: noop, _sendBlockRequest: noop, _handleRequest: noop })
    }
    installPeerChoice(replicator, { seeding: () => false })
    const limit = (p: ChoicePeer) => (p as unknown as { getMaxInflight(): number }).getMaxInflight()
    assert.equal(limit(a), 48, "the only holder: hypercore's own limit")
    assert.equal(limit(seed), Math.min(48, PEER_CHOICE_ORIGIN_INFLIGHT), 'the origin, a holder connected')
    ;(replicator as { _addPeer(p: ChoicePeer): void })._addPeer(b)
    replicator.peers.push(b)
    assert.equal(limit(a), PEER_CHOICE_HOLDER_INFLIGHT, 'another holder connected: capped')
    assert.equal(limit(b), PEER_CHOICE_HOLDER_INFLIGHT)
    assert.ok(PEER_CHOICE_HOLDER_INFLIGHT < 48, "below hypercore's own limit (docs/benchmarks.md, third pass)")
    // blocks from a that arrive fast open its window one by one; slow ones close it to the floor
    const ondata = (p: ChoicePeer, ago: number) =>
      (replicator as unknown as { _ondata(p: ChoicePeer, req: unknown, d: unknown): void })._ondata(
        p,
        { id: 1, timestamp: Date.now() - ago, block: { index: 1 } },
        {},
      )
    ondata(a, 5)
    ondata(a, 5)
    assert.equal(limit(a), PEER_CHOICE_HOLDER_INFLIGHT + 2, 'fast blocks: two more')
    assert.equal(limit(b), PEER_CHOICE_HOLDER_INFLIGHT, 'per holder')
    for (let k = 0; k < 20; k++) ondata(a, 10 * PEER_CHOICE_HOLDER_LATENCY_MS)
    assert.equal(limit(a), PEER_CHOICE_HOLDER_INFLIGHT, 'slow blocks: back to the floor, not below')
    ondata(seed, 5)
    assert.equal(limit(seed), Math.min(48, PEER_CHOICE_ORIGIN_INFLIGHT), 'an origin keeps its own cap')
  })

  test("a holder's window: one more per block under the latency target, one less over, within its bounds", () => {
    assert.equal(nextHolderCap(2, 100, 300, 2, 48), 3)
    assert.equal(nextHolderCap(3, 400, 300, 2, 48), 2)
    assert.equal(nextHolderCap(2, 400, 300, 2, 48), 2, 'never below the floor')
    assert.equal(nextHolderCap(48, 100, 300, 2, 48), 48, "never above hypercore's limit")
    assert.equal(nextHolderCap(60, 100, 300, 2, 48), 48, 'hypercore lowered its limit: follow it')
    assert.equal(nextHolderCap(5, 300, 300, 2, 48), 5, 'on target: kept')
  })

  /**
   * The few replicator fields the wiring touches (hypercore 11's lib/replicator.js), with `peers`
   * stubbed, counting `updateAll` calls and reads of `_ranges` (each wakeup of a nudge timer reads it).
   */
  function fakeReplicator(peers: ReturnType<typeof peer>[], length: number) {
    const seen = { updates: 0, looks: 0, ranges: [] as unknown[] }
    const noop = () => false
    for (const p of peers) {
      Object.assign(p, { getMaxInflight: () => 48, _requestRange: noop, _sendBlockRequest: noop, _handleRequest: noop })
    }
    const replicator = {
      destroyed: false,
      peers,
      get _ranges() {
        seen.looks++
        return seen.ranges
      },
      core: { state: { length, fork: 0 } },
      _addPeer() {},
      _ondata() {},
      _onnodata() {},
      _onupload() {},
      updateAll: () => {
        seen.updates++
      },
      addRange: () => {
        seen.ranges = [{ start: 0, end: length }]
        return 'ref'
      },
    }
    return { replicator, seen }
  }

  test('the update nudge runs only while the feed has a range to download', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] })
    const { replicator, seen } = fakeReplicator([{ ...peer([1]), inflight: 0 }, peer([2])], 10)
    const uninstall = installPeerChoice(replicator, { seeding: () => false }, { nudgeMs: 100 })
    t.mock.timers.tick(1000)
    assert.equal(seen.updates, 0, 'no range: no update')
    assert.equal(seen.looks, 0, 'no range: no wakeups at all (a seeded or finished feed)')
    assert.equal((replicator as { addRange: () => unknown }).addRange(), 'ref', 'the wrapped addRange returns its ref')
    t.mock.timers.tick(350)
    assert.equal(seen.updates, 3, 'a download: nudged every 100 ms')
    seen.ranges = []
    seen.looks = 0
    t.mock.timers.tick(1000)
    assert.equal(seen.updates, 3, 'the range done: no update')
    assert.equal(seen.looks, 1, 'the range done: one last wakeup, then the timer stopped')
    replicator.addRange()
    t.mock.timers.tick(100)
    assert.equal(seen.updates, 4, 'a new range starts it again')
    uninstall()
    t.mock.timers.tick(1000)
    assert.equal(seen.updates, 4, 'uninstalled: stopped')
  })

  test('wired: early in a download, with sessions not on the feed yet, the seed alone is asked for few blocks', (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 })
    const seed = { ...peer([], { contiguous: 10 }) }
    const { replicator, seen } = fakeReplicator([seed], 10)
    let sessions = 8
    const uninstall = installPeerChoice(replicator, { seeding: () => false, sessions: () => sessions })
    const limit = () => (seed as unknown as { getMaxInflight(): number }).getMaxInflight()
    assert.equal(limit(), 48, 'no download yet')
    replicator.addRange()
    assert.equal(limit(), PEER_CHOICE_ORIGIN_INFLIGHT, 'the download started; 7 sessions not on the feed')
    sessions = 1
    assert.equal(limit(), 48, 'every session on the feed: a lone device')
    sessions = 8
    t.mock.timers.tick(PEER_CHOICE_START_GRACE_MS)
    assert.equal(limit(), 48, "the grace is over: hypercore's own limit")
    seen.ranges = []
    t.mock.timers.tick(1000) // the nudge sees no range left: the download is over
    replicator.addRange()
    assert.equal(limit(), PEER_CHOICE_ORIGIN_INFLIGHT, 'the next download gets its own grace')
    uninstall()
  })

  test('the nudge also runs with a single peer: a request hypercore failed to make is made', (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] })
    const { replicator, seen } = fakeReplicator([{ ...peer([1]), inflight: 0 }], 3)
    const uninstall = installPeerChoice(replicator, { seeding: () => false }, { nudgeMs: 100 })
    replicator.addRange()
    t.mock.timers.tick(250)
    assert.equal(seen.updates, 2, 'one peer, a range left: nudged every 100 ms')
    uninstall()
  })
})
