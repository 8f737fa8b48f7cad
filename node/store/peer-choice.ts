/**
 * Peer choice of a download: "super-seeding" from the requester's side.
 *
 * Why: hypercore 11 asks every peer that holds a block for it at random, up to its in-flight limit
 * per peer (48 on libp2p streams). The seed holds every block, so each device keeps 48 requests
 * queued at the seed and the seed uploads the same blocks to several devices: at 100 Mbit/s it
 * uploaded ~3.2×F. Where the seed's uplink is the limit (Kumar–Ross: F/u_s), every byte it sends
 * twice costs time; the devices' uplinks could carry those bytes instead.
 *
 * The rule, per feed, on each node while it downloads:
 * - an *origin* is a peer holding the whole feed (the seed, or a device that finished);
 * - a *holder* is an active peer holding part of it that is delivering (nothing in flight to it, or
 *   a block from it within `holderStallMs`: a peer that claims blocks and never sends them stops
 *   counting as a holder, so it cannot starve a device);
 * - while at least one holder is connected, an origin is asked only for blocks no holder has
 *   ("rarest first" for the origin) and for at most `originInflight` blocks at a time, so its queue
 *   stays short and what it uploads is new to the swarm; holders serve the rest among themselves,
 *   each asked for few blocks at a time while other holders are connected (a holder's uplink serves
 *   every device: a long queue there delays every hop of a block): `holderInflight` at first and at
 *   least, one more per block that arrived within `holderLatencyMs`, one less per block slower;
 * - with no holder (a lone device, or every other peer finished) hypercore's own choice applies:
 *   origins are asked for anything, at the full in-flight limit; but for `startGraceMs` after a
 *   download starts, while this node has replication sessions that have not joined the feed yet
 *   (other devices whose stores are opening for the same release), an origin stays capped at
 *   `originInflight`, so the first device to open does not queue 48 blocks at the seed.
 * A timer re-runs hypercore's peer update every `nudgeMs` while a download runs (from the first range
 * request until no range is left), so a device whose origin requests all waited on holders asks again
 * once a holder stalls or leaves; with a single peer too, since hypercore can miss the wakeup of a
 * range added at the wrong moment (seen in test/unit/store-replicator.test.ts: a node fetching a
 * 3-block feed from its one peer knew the length and that the peer held every block, had nothing in
 * flight, and sat there until one update made the three requests at once).
 *
 * hypercore has no public hook for this: `installPeerChoice` wraps a few methods of the feed's
 * replicator and its peers (lib/replicator.js, 11.x), as model-store.ts does for the in-flight
 * range; the rules themselves are pure functions in peer-choice-rules.ts.
 */
import {
  PEER_CHOICE_DECLINED_MS,
  PEER_CHOICE_HOLDER_INFLIGHT,
  PEER_CHOICE_HOLDER_LATENCY_MS,
  PEER_CHOICE_HOLDER_STALL_MS,
  PEER_CHOICE_LATENCY_GAIN,
  PEER_CHOICE_NUDGE_MS,
  PEER_CHOICE_ORIGIN_INFLIGHT,
  PEER_CHOICE_START_GRACE_MS,
} from './constants.ts'
import {
  type ChoicePeer,
  expectHolders,
  heldByHolder,
  isHolder,
  isOrigin,
  maxInflight,
  nextHolderCap,
  pickOriginBlock,
  shouldDecline,
} from './peer-choice-rules.ts'

export {
  type ChoicePeer,
  expectHolders,
  heldByHolder,
  isHolder,
  isOrigin,
  maxInflight,
  nextHolderCap,
  pickOriginBlock,
  shouldDecline,
} from './peer-choice-rules.ts'

/** Options of the rule (defaults in constants.ts). */
export interface PeerChoiceInit {
  /** Requests in flight to an origin while holders are connected. */
  originInflight?: number
  /** Requests in flight to a holder while other holders are connected, at first and at least. */
  holderInflight?: number
  /** A holder's cap grows by one per block that took less than this from request to arrival, shrinks above, ms. */
  holderLatencyMs?: number
  /** A holder with requests in flight that sent nothing for this long stops counting, ms. */
  holderStallMs?: number
  /** Period of the update nudge while a download runs, ms. */
  nudgeMs?: number
  /** After an origin declined a block, ask origins for it again only after this long, ms. */
  declinedMs?: number
  /** For this long after a download starts, an origin is capped while sessions have not joined the feed, ms. */
  startGraceMs?: number
}

/* hypercore internals this module wraps (lib/replicator.js). */
interface HcRange {
  start: number
  end: number
  blocks: number[] | null
}
interface HcRequest {
  id: number
  /** When hypercore made the request (Date.now()). */
  timestamp: number
  block: { index: number } | null
  hash: unknown
  seek: unknown
  upgrade: unknown
  manifest?: boolean
}
interface HcPeer extends ChoicePeer {
  remoteFork: number
  syncsProcessing: number
  remoteRequests: Map<number, HcRequest>
  wireNoData: { send(m: { request: number; reason: number }): void }
  getMaxInflight(): number
  _requestRange(r: HcRange): boolean
  _requestRangeBlock(index: number, length: number): boolean
  _sendBlockRequest(req: unknown, b: unknown): void
  _handleRequest(msg: HcRequest): Promise<void>
  _findNext(i: number): number
  _getValidEnd(end: number): number
}
interface HcReplicator {
  destroyed: boolean
  peers: HcPeer[]
  _ranges: HcRange[]
  core: { state: { length: number; fork: number } }
  _addPeer(peer: HcPeer): void
  _ondata(peer: HcPeer, req: HcRequest | null, data: unknown): void
  _onnodata(peer: HcPeer, req: HcRequest | null, reason: number): void
  _onupload(index: number, bytes: number, from: HcPeer): void
  updateAll(): void
  addRange(...args: unknown[]): unknown
}

/** What the rule needs to know about the feed besides its replicator. */
export interface PeerChoiceFeed {
  /** This node owns (seeds) the feed: it declines duplicate requests once (see `shouldDecline`). */
  seeding: () => boolean
  /** Replication sessions this node has (with any peer, on any feed); default: the feed's peers. */
  sessions?: () => number
}

/**
 * Applies the rule to one feed's replicator (`core.core.replicator`): the requester side always,
 * the seed side when `feed.seeding()`. Returns the uninstall (stops the nudge timer).
 */
export function installPeerChoice(replicator: unknown, feed: PeerChoiceFeed, init: PeerChoiceInit = {}): () => void {
  const r = replicator as HcReplicator
  const caps = {
    origin: init.originInflight ?? PEER_CHOICE_ORIGIN_INFLIGHT,
    holder: init.holderInflight ?? PEER_CHOICE_HOLDER_INFLIGHT,
  }
  const stallMs = init.holderStallMs ?? PEER_CHOICE_HOLDER_STALL_MS
  const latencyMs = init.holderLatencyMs ?? PEER_CHOICE_HOLDER_LATENCY_MS
  /** Per peer: its in-flight cap as a holder, the smoothed latency of its blocks, hypercore's own limit. */
  const windows = new WeakMap<HcPeer, { cap: number; latency: number; stock: () => number }>()
  const declinedMs = init.declinedMs ?? PEER_CHOICE_DECLINED_MS
  const progress = new WeakMap<HcPeer, number>()
  /** Requester side: block → when an origin declined it. */
  const declinedAt = new Map<number, number>()
  /** Seed side: block → the peer it was last uploaded to; peer → blocks declined to it. */
  const uploadedTo = new Map<number, HcPeer>()
  const declinedTo = new WeakMap<HcPeer, Set<number>>()
  const length = () => r.core.state.length
  const graceMs = init.startGraceMs ?? PEER_CHOICE_START_GRACE_MS
  /** When the current download started (its first range), while it runs. */
  let startedAt: number | undefined
  const expected = () => {
    const now = Date.now()
    // asked on every in-flight question while no holder is connected (one to one: several times
    // per block), and counting sessions walks the connected peers: only within the grace
    if (startedAt === undefined || now - startedAt >= graceMs) return false
    return expectHolders(now, startedAt, graceMs, feed.sessions?.() ?? r.peers.length, r.peers.length)
  }
  // hypercore asks every peer's in-flight limit on each pass of its update loop (several times per
  // block received): the holders are worked out once per millisecond, not once per question
  let memo: { at: number; peers: number; list: HcPeer[] } = { at: -1, peers: -1, list: [] }
  const allHolders = (): HcPeer[] => {
    const now = Date.now()
    if (memo.at !== now || memo.peers !== r.peers.length) {
      const list = r.peers.filter((p) => isHolder(p, length(), progress.get(p) ?? now, now, stallMs))
      memo = { at: now, peers: r.peers.length, list }
    }
    return memo.list
  }
  /** How many holders there are besides `except`. */
  const holderCount = (except: HcPeer) => {
    const hs = allHolders()
    return hs.length - (hs.includes(except) ? 1 : 0)
  }
  const connected = (p: HcPeer) => p.isActive() && r.peers.includes(p)
  const patched = new WeakSet<HcPeer>()
  const patch = (peer: HcPeer) => {
    if (patched.has(peer)) return
    patched.add(peer)
    const stock = peer.getMaxInflight.bind(peer)
    const requestRange = peer._requestRange.bind(peer)
    const send = peer._sendBlockRequest.bind(peer)
    const handle = peer._handleRequest.bind(peer)
    const w = { cap: caps.holder, latency: Number.NaN, stock }
    windows.set(peer, w)
    peer.getMaxInflight = () => {
      const n = stock()
      const holders = holderCount(peer)
      const limits = { origin: caps.origin, holder: w.cap }
      return maxInflight(peer, length(), holders, n, limits, holders === 0 && expected())
    }
    peer._sendBlockRequest = (req, b) => {
      if (peer.inflight === 0) progress.set(peer, Date.now())
      send(req, b)
    }
    peer._requestRange = (range) => {
      if (range.blocks || !isOrigin(peer, length())) return requestRange(range)
      const hs = allHolders() // an origin is never a holder itself
      if (hs.length === 0) return requestRange(range)
      if (peer.syncsProcessing > 0 || r.core.state.fork !== peer.remoteFork) return false
      const now = Date.now()
      const avoid = (i: number) => heldByHolder(hs, i) || now - (declinedAt.get(i) ?? -Infinity) < declinedMs
      const i = pickOriginBlock(range.start, peer._getValidEnd(range.end), (from) => peer._findNext(from), avoid)
      return i !== -1 && peer._requestRangeBlock(i, length())
    }
    peer._handleRequest = (msg) => {
      const index = msg.block?.index
      if (index === undefined || msg.upgrade || msg.hash || msg.seek || msg.manifest || !feed.seeding()) {
        return handle(msg)
      }
      const declined = declinedTo.get(peer) ?? new Set<number>()
      if (!shouldDecline(peer, uploadedTo.get(index), connected, declined.has(index))) return handle(msg)
      declinedTo.set(peer, declined)
      declined.add(index)
      peer.remoteRequests.delete(msg.id)
      peer.wireNoData.send({ request: msg.id, reason: 0 })
      return Promise.resolve()
    }
  }
  for (const p of r.peers) patch(p)
  const { _addPeer: addPeer, _ondata: ondata, _onnodata: onnodata, _onupload: onupload } = r
  r._addPeer = function (this: HcReplicator, peer) {
    patch(peer)
    return addPeer.call(this, peer)
  }
  r._ondata = function (this: HcReplicator, peer, req, data) {
    const now = Date.now()
    progress.set(peer, now)
    const w = windows.get(peer)
    if (w !== undefined && req !== null && !isOrigin(peer, length())) {
      const sample = now - req.timestamp
      w.latency = Number.isNaN(w.latency) ? sample : w.latency + PEER_CHOICE_LATENCY_GAIN * (sample - w.latency)
      w.cap = nextHolderCap(w.cap, w.latency, latencyMs, caps.holder, w.stock())
    }
    return ondata.call(this, peer, req, data)
  }
  r._onnodata = function (this: HcReplicator, peer, req, reason) {
    if (reason === 0 && req?.block && isOrigin(peer, length())) declinedAt.set(req.block.index, Date.now())
    return onnodata.call(this, peer, req, reason)
  }
  r._onupload = function (this: HcReplicator, index, bytes, from) {
    if (feed.seeding()) uploadedTo.set(index, from)
    return onupload.call(this, index, bytes, from)
  }
  // the nudge runs only while this feed downloads: started by a range request, stopped once no
  // range is left (a seeded or finished feed costs no wakeups)
  let timer: NodeJS.Timeout | undefined
  let uninstalled = false
  const nudge = () => {
    if (r.destroyed || r._ranges.length === 0) return stop()
    if (r.peers.length > 0) r.updateAll()
  }
  const { addRange } = r
  r.addRange = function (this: HcReplicator, ...args: unknown[]) {
    const ref = addRange.apply(this, args)
    if (timer === undefined && !uninstalled && this._ranges.length > 0) {
      startedAt = Date.now()
      timer = setInterval(nudge, init.nudgeMs ?? PEER_CHOICE_NUDGE_MS)
      timer.unref()
    }
    return ref
  }
  function stop() {
    clearInterval(timer)
    timer = undefined
    startedAt = undefined
  }
  return () => {
    uninstalled = true
    stop()
  }
}
