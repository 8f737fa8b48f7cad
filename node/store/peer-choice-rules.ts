/**
 * The pure rules of peer choice (peer-choice.ts, which wires them into hypercore's replicator):
 * who is an origin or a holder, in-flight caps, which block an origin is asked for, when the seed
 * declines a duplicate.
 */

/** The fields of a hypercore 11 replication peer (lib/replicator.js `Peer`) the rules read. */
export interface ChoicePeer {
  /** Blocks [0, n) the remote holds (hypercore's contiguous-length hint). */
  _remoteContiguousLength: number
  /** Requests in flight to this peer. */
  inflight: number
  isActive(): boolean
  _remoteHasBlock(index: number): boolean
}

/** A peer holding the whole feed of `length` blocks. */
export function isOrigin(peer: ChoicePeer, length: number): boolean {
  return length > 0 && peer._remoteContiguousLength >= length
}

/**
 * An active peer holding part of the feed that is delivering: nothing in flight to it, or it made
 * progress (sent a block, or was first asked) less than `stallMs` before `now`.
 */
export function isHolder(
  peer: ChoicePeer,
  length: number,
  lastProgress: number,
  now: number,
  stallMs: number,
): boolean {
  if (!peer.isActive() || isOrigin(peer, length)) return false
  return peer.inflight === 0 || now - lastProgress < stallMs
}

/** Whether some holder has block `index` (so an origin should not be asked for it). */
export function heldByHolder(holders: readonly ChoicePeer[], index: number): boolean {
  for (const h of holders) if (h._remoteHasBlock(index)) return true
  return false
}

/**
 * In-flight limit of `peer`, given the holders connected besides it: an origin is capped at
 * `caps.origin` while any holder exists, a holder at `caps.holder` while another holder exists
 * (short queues: a block is asked from whichever holder has a free slot, not queued for seconds
 * behind the first one that announced it). A peer alone keeps hypercore's `stock` limit, but an
 * origin is capped while holders are `expected` (see `expectHolders`).
 */
export function maxInflight(
  peer: ChoicePeer,
  length: number,
  holders: number,
  stock: number,
  caps: { origin: number; holder: number },
  expected = false,
): number {
  const origin = isOrigin(peer, length)
  if (holders === 0 && !(expected && origin)) return stock
  return Math.min(stock, origin ? caps.origin : caps.holder)
}

/**
 * Whether holders are about to join a download with none yet: it started less than `graceMs`
 * before `now` and this node has replication sessions (`sessions`) that have not joined the feed
 * (`feedPeers`), such as devices whose stores are still opening for the same release.
 */
export function expectHolders(
  now: number,
  startedAt: number | undefined,
  graceMs: number,
  sessions: number,
  feedPeers: number,
): boolean {
  return startedAt !== undefined && now - startedAt < graceMs && sessions > feedPeers
}

/**
 * A holder's next in-flight cap after a block from it took `latencyMs` (smoothed) from request to
 * arrival: one more while that is under `targetMs` (a short queue there: a fast link, or a holder
 * few others ask), one less while it is over (the holder's uplink is the queue), within [min, max].
 */
export function nextHolderCap(cap: number, latencyMs: number, targetMs: number, min: number, max: number): number {
  if (latencyMs < targetMs) return Math.max(min, Math.min(max, cap + 1))
  if (latencyMs > targetMs) return Math.min(max, Math.max(min, cap - 1))
  return Math.max(min, Math.min(max, cap))
}

/**
 * The block to ask an origin for: the first index at or after a random start (wrapping to `start`)
 * that `next` yields (missing here, not in flight, the origin has it) and `avoid` does not reject
 * (a holder has it, or an origin declined it just now); -1 if none.
 */
export function pickOriginBlock(
  start: number,
  end: number,
  next: (from: number) => number,
  avoid: (index: number) => boolean,
  random: () => number = Math.random,
): number {
  if (end <= start) return -1
  const off = start + Math.floor(random() * (end - start))
  for (const [from, to] of [
    [off, end],
    [start, off],
  ]) {
    for (let i = next(from); i !== -1 && i < to; i = next(i + 1)) {
      if (!avoid(i)) return i
    }
  }
  return -1
}

/**
 * Seed side: whether to decline (once) `requester`'s request for a block this node already uploaded
 * to `uploadedTo`, another peer still connected: that peer will hold it and can serve it. A second
 * request for the same block from the same peer is served, so nobody is starved (a lone device, a
 * peer that cannot reach the first recipient).
 */
export function shouldDecline<P>(
  requester: P,
  uploadedTo: P | undefined,
  connected: (p: P) => boolean,
  declinedBefore: boolean,
): boolean {
  return uploadedTo !== undefined && uploadedTo !== requester && !declinedBefore && connected(uploadedTo)
}
