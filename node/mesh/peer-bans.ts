/**
 * Temporary bans of peers whose gossip score fell below the graylist threshold (issue #11).
 *
 * gossipsub discards a graylisted peer's RPCs before any validator runs, but the bytes still
 * arrive: the connection keeps paying for pnet, Noise and yamux on every frame of a flood. This
 * module cuts that cost.
 *
 * How it works:
 * - Every PEER_BAN_CHECK_MS, `check(now)` reads the score of each connected peer (`scoreOf`).
 *   A peer under the threshold is banned until now + its ban length. The first ban lasts
 *   PEER_BAN_MS, and each later ban of that peer doubles it, up to PEER_BAN_MAX_MS.
 * - A ban closes every connection to the peer. The connection gater (mesh-node.ts) consults
 *   `isBanned` to refuse dials and connections until the ban ends. gossipsub keeps a
 *   disconnected peer's score for a while, so a peer that comes back while its score is still
 *   low is banned again, for longer.
 * - Bans are counted (`llmesh_mesh_peer_bans_total`) and logged once per ban, with the score.
 *   Refused connections are counted by the gate like revoked ones.
 * - Memory is bounded: at most PEER_BAN_MAX_PEERS peers are remembered; the oldest ban goes first.
 */
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from '../logger.ts'
import { PEER_BAN_CHECK_MS, PEER_BAN_MAX_MS, PEER_BAN_MAX_PEERS, PEER_BAN_MS, PEER_BAN_SCORE } from './constants.ts'
import type { MeshLibp2p } from './host.ts'

/** What the bans use. */
export interface PeerBansComponents {
  /** Peer ids with an open connection. */
  connected: () => string[]
  /** The peer's gossip score (undefined while gossip is not running). */
  scoreOf: (peer: string) => number | undefined
  /** Closes every connection to the peer. */
  hangUp: (peer: string, reason: string) => void
  logger: Logger
  now?: () => number
}

/** Options (defaults in constants.ts). */
export interface PeerBansInit {
  threshold?: number
  checkMs?: number
  banMs?: number
  maxBanMs?: number
  maxPeers?: number
}

interface Ban {
  until: number
  count: number
}

/** The gater methods that name the peer (the others see only an address). */
const PEER_METHODS = [
  'denyDialPeer',
  'denyInboundEncryptedConnection',
  'denyOutboundEncryptedConnection',
  'denyInboundUpgradedConnection',
  'denyOutboundUpgradedConnection',
] as const

/** One gater that refuses what any of `gaters` refuses (libp2p takes one). */
export function eitherGater(...gaters: ConnectionGater[]): ConnectionGater {
  const out: ConnectionGater = {}
  for (const name of [...PEER_METHODS, 'denyOutboundConnection'] as const) {
    const fns = gaters.map((g) => g[name]).filter((f) => f !== undefined) as Array<(...a: unknown[]) => unknown>
    if (fns.length === 0) continue
    ;(out as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      for (const f of fns) if (await f(...args)) return true
      return false
    }
  }
  return out
}

export class PeerBans {
  /** Bans made since start. */
  bans = 0
  /** Connections refused or closed because their peer was banned. */
  refused = 0
  private readonly c: PeerBansComponents
  private readonly threshold: number
  private readonly checkMs: number
  private readonly banMs: number
  private readonly maxBanMs: number
  private readonly maxPeers: number
  private readonly banned = new Map<string, Ban>()
  private timer: NodeJS.Timeout | undefined

  constructor(components: PeerBansComponents, init: PeerBansInit = {}) {
    this.c = components
    this.threshold = init.threshold ?? PEER_BAN_SCORE
    this.checkMs = init.checkMs ?? PEER_BAN_CHECK_MS
    this.banMs = init.banMs ?? PEER_BAN_MS
    this.maxBanMs = init.maxBanMs ?? PEER_BAN_MAX_MS
    this.maxPeers = init.maxPeers ?? PEER_BAN_MAX_PEERS
  }

  start(): void {
    if (this.timer !== undefined) return
    this.timer = setInterval(() => this.check(), this.checkMs)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Whether the peer is banned now (the connection gater asks). */
  isBanned(peer: string, now = this.now()): boolean {
    const b = this.banned.get(peer)
    return b !== undefined && b.until > now
  }

  /** A connection gater refusing banned peers (counted in `refused`). */
  gater(): ConnectionGater {
    const deny = (peer: PeerId): boolean => {
      if (!this.isBanned(peer.toString())) return false
      this.refused++
      return true
    }
    return Object.fromEntries(PEER_METHODS.map((m) => [m, deny]))
  }

  /** Peers banned now, with when each ban ends (for /status). */
  active(now = this.now()): Array<{ peer: string; until: number; count: number }> {
    return [...this.banned].filter(([, b]) => b.until > now).map(([peer, b]) => ({ peer, ...b }))
  }

  /** Bans every connected peer under the threshold; never throws (one bad score stops no check). */
  check(now = this.now()): void {
    for (const peer of new Set(this.c.connected())) {
      try {
        const score = this.c.scoreOf(peer)
        if (score === undefined || score >= this.threshold) continue
        if (!this.isBanned(peer, now)) this.ban(peer, score, now)
        this.refused++
        this.c.hangUp(peer, `gossip score ${score.toFixed(0)} under ${this.threshold}`)
      } catch (err) {
        this.c.logger.warn({ err, peer }, 'peer ban check failed')
      }
    }
  }

  private ban(peer: string, score: number, now: number): void {
    const count = (this.banned.get(peer)?.count ?? 0) + 1
    const ms = Math.min(this.maxBanMs, this.banMs * 2 ** (count - 1))
    this.banned.delete(peer)
    this.banned.set(peer, { until: now + ms, count })
    while (this.banned.size > this.maxPeers) this.banned.delete(this.banned.keys().next().value as string)
    this.bans++
    this.c.logger.warn(
      { peer, score, banMs: ms, bans: count },
      'peer banned: gossip score under the graylist threshold',
    )
  }

  private now(): number {
    return (this.c.now ?? Date.now)()
  }
}

/** Bans over a libp2p host (undefined while stopped): its connections and gossipsub's scores. */
export function hostBans(host: () => MeshLibp2p | undefined, logger: Logger, init: PeerBansInit = {}): PeerBans {
  const scored = () => host()?.services.pubsub as unknown as { score?: { score(peer: string): number } } | undefined
  return new PeerBans(
    {
      connected: () =>
        host()
          ?.getConnections()
          .map((c) => c.remotePeer.toString()) ?? [],
      scoreOf: (p) => scored()?.score?.score(p),
      hangUp: (p, reason) => {
        for (const c of host()?.getConnections(peerIdFromString(p)) ?? []) c.abort(new Error(reason))
      },
      logger,
    },
    init,
  )
}
