/**
 * The pure rules of mDNS discovery (mdns-discovery.ts wires them to @libp2p/mdns): when to query
 * next, and which answers to hand on to libp2p.
 *
 * How it works:
 * - Queries back off (RFC 6762 §5.2): the first interval is `base`, each next one doubles, up to
 *   `max`. The schedule starts over at `base` while the node has no peer connected (it is looking for
 *   a fleet) and when its own addresses change (the others learn them from its answer to its own
 *   query). A newcomer needs nobody else's schedule: everyone, itself included, answers its first
 *   queries by multicast, so every node hears it at once.
 * - Every node hears every answer. An answer is handed on (to libp2p's peer store, which the dialer
 *   reads) when its peer is new, its addresses changed, or it was last handed on `refreshMs` ago;
 *   otherwise it is a repeat and costs nothing more. At most `perWindow` answers are handed on per
 *   `windowMs`: past that they are dropped (a host forging answers for made-up peers cannot fill the
 *   peer store or the dial queue), and a legitimate peer dropped is heard at the next query. The
 *   peers remembered are capped at `maxPeers`, the least recently heard forgotten first.
 */

/** The next query interval, ms: `base` while `restart`, else twice `previous` up to `max`. */
export function nextQueryInterval(previous: number | undefined, restart: boolean, base: number, max: number): number {
  if (restart || previous === undefined) return base
  return Math.min(max, Math.max(base, previous * 2))
}

/** What became of one mDNS answer. */
export type MdnsOutcome = 'new' | 'changed' | 'refreshed' | 'repeat' | 'limited'

/** Limits of the answer filter. */
export interface MdnsFilterInit {
  /** Hand an unchanged peer on again after this long, ms. */
  refreshMs: number
  /** Peers remembered. */
  maxPeers: number
  /** Answers handed on per window. */
  perWindow: number
  /** The window, ms. */
  windowMs: number
}

interface Seen {
  addrs: string
  /** When this peer was last handed on, ms. */
  forwardedAt: number
}

/** Decides, per answer, whether libp2p hears of it (see the block above). `now` is passed in. */
export class MdnsAnswerFilter {
  private readonly init: MdnsFilterInit
  private readonly seen = new Map<string, Seen>()
  private windowStart = Number.NEGATIVE_INFINITY
  private inWindow = 0

  constructor(init: MdnsFilterInit) {
    this.init = init
  }

  /** Peers remembered now. */
  get size(): number {
    return this.seen.size
  }

  /** The outcome of an answer for `peer` with addresses `addrs` (any stable text of the set) at `now`. */
  decide(peer: string, addrs: string, now: number): MdnsOutcome {
    const prev = this.seen.get(peer)
    let outcome: MdnsOutcome
    if (prev === undefined) outcome = 'new'
    else if (prev.addrs !== addrs) outcome = 'changed'
    else if (now - prev.forwardedAt >= this.init.refreshMs) outcome = 'refreshed'
    else outcome = 'repeat'
    if (outcome !== 'repeat' && !this.admit(now)) return 'limited'
    // most recently heard last: the first key is the one to forget
    this.seen.delete(peer)
    this.seen.set(peer, outcome === 'repeat' && prev !== undefined ? prev : { addrs, forwardedAt: now })
    if (this.seen.size > this.init.maxPeers) {
      const oldest = this.seen.keys().next().value
      if (oldest !== undefined) this.seen.delete(oldest)
    }
    return outcome
  }

  /** Forgets `peer` (e.g. it disconnected): its next answer is handed on whatever it says. */
  forget(peer: string): void {
    this.seen.delete(peer)
  }

  private admit(now: number): boolean {
    if (now - this.windowStart >= this.init.windowMs) {
      this.windowStart = now
      this.inWindow = 0
    }
    if (this.inWindow >= this.init.perWindow) return false
    this.inWindow++
    return true
  }
}
