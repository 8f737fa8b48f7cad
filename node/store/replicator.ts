/**
 * Replicator: runs corestore replication over the libp2p protocol `PROTOCOL_REPLICATE` with every
 * connected fleet peer, so every node that holds blocks serves them (seed and devices alike).
 *
 * How it works: one replication session per remote peer. When a connection opens, the peer whose
 * id sorts lower dials the protocol (initiator); the other side accepts it in its handler.
 * Each session pipes the libp2p stream (adapted to a Duplex) through `corestore.replicate()`;
 * corestore then attaches every open feed and any feed the remote asks for that this store
 * holds. A session that fails while the connection is still up is re-dialed after a delay.
 * States per peer: `dialing` → `active` → (closed: removed).
 * A store not open yet (a device that holds nothing, ModelStore's `openOnDemand`) is not opened by
 * a peer: no session is dialed, and a session a peer dials is accepted and left `waiting` (its bytes
 * stay in the libp2p stream's buffer) until the store opens for a fetch; then waiting sessions are
 * attached and the sessions this node dials are dialed.
 * Stall recovery: hypercore keeps a block request in flight to a peer until that peer answers or
 * its session ends, and stops asking a peer it has paused (after repeated no-data replies) for the
 * life of the session. A download that makes no progress although peers hold its blocks (the
 * installer's stall signal) `recycle`s every session: each restarts clean (the lower id re-dials),
 * at most once per `recycleMinMs`, counted in `recycles`.
 * WAN links: a session over a connection `throttle` names (node/mesh/wan-rate.ts, `--wan-rate`)
 * pipes through its token-bucket Transforms each way; sessions also run over relayed connections.
 */

import type { Duplex } from 'node:stream'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Logger } from 'pino'
import { PROTOCOL_REPLICATE, PROTOCOL_REPLICATE_V1 } from '../../protocols/constants.ts'
import { REPLICATE_RECYCLE_MIN_MS, REPLICATE_REDIAL_MS } from './constants.ts'
import type { InvalidBlock, ModelStore } from './model-store.ts'
import { sessionPipe } from './session-pipe.ts'
import type { ByteCounters } from './stream-duplex.ts'

/** Replication protocols, newest first: a dial negotiates the newest both speak. */
export const REPLICATE_PROTOCOLS: readonly string[] = [PROTOCOL_REPLICATE, PROTOCOL_REPLICATE_V1]

/** What the replicator uses. */
export interface ReplicatorComponents {
  libp2p: Libp2p
  store: ModelStore
  logger: Logger
}

/** Options. */
export interface ReplicatorInit {
  /** Protocol ids offered and answered, newest first; default `REPLICATE_PROTOCOLS` (benches pin one to compare). */
  protocols?: readonly string[]
  /** Replicate only with peers this accepts (e.g. enrolled fleet members). Default: every connected peer. */
  isFleetPeer?: (peerId: string) => boolean
  /** Delay before re-dialing a failed session, ms. */
  redialMs?: number
  /** Least time between two recycles of every session, ms (default `REPLICATE_RECYCLE_MIN_MS`). */
  recycleMinMs?: number
  /** Rate limiters for a session over `conn` (WAN links, `--wan-rate`), or undefined: none. */
  throttle?: (conn: Connection) => { inbound: Duplex; outbound: Duplex } | undefined
}

/** Bytes moved by replication, and blocks refused because they failed verification, in total and per peer. */
export interface ReplicationStats extends ByteCounters {
  invalidBlocks: number
  /** Verified blocks received / blocks served, all feeds. */
  blocksIn: number
  blocksOut: number
  /** Times every session was closed and restarted because a download stalled. */
  recycles: number
  peers: Record<string, ByteCounters & { state: SessionState; invalidBlocks: number }>
}

type SessionState = 'dialing' | 'waiting' | 'active'

interface Session {
  state: SessionState
  /** A session accepted while the store was not open: its stream, attached once it is. */
  waiting?: { stream: Stream; conn: Connection }
  counters: ByteCounters
  invalidBlocks: number
  close: () => void
}

/** Corestore replication over libp2p. */
export class Replicator {
  private readonly c: ReplicatorComponents
  private readonly protocols: readonly string[]
  private readonly isFleetPeer: (peerId: string) => boolean
  private readonly redialMs: number
  private readonly sessions = new Map<string, Session>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly totals: ByteCounters = { bytesIn: 0, bytesOut: 0 }
  private invalidTotal = 0
  private readonly recycleMinMs: number
  private readonly throttle: NonNullable<ReplicatorInit['throttle']>
  private recycles = 0
  private lastRecycle = Number.NEGATIVE_INFINITY
  /** hypercore noise stream of a session → remote libp2p peer id (to name who sent an invalid block). */
  private readonly streamPeers = new WeakMap<object, string>()
  private offInvalid: (() => void) | null = null
  private offOpen: (() => void) | null = null
  private running = false
  private readonly onConnect = (evt: CustomEvent<PeerId>) => this.maybeDial(evt.detail.toString())

  constructor(components: ReplicatorComponents, init: ReplicatorInit = {}) {
    this.c = components
    this.protocols = init.protocols ?? REPLICATE_PROTOCOLS
    this.isFleetPeer = init.isFleetPeer ?? (() => true)
    this.redialMs = init.redialMs ?? REPLICATE_REDIAL_MS
    this.recycleMinMs = init.recycleMinMs ?? REPLICATE_RECYCLE_MIN_MS
    this.throttle = init.throttle ?? (() => undefined)
  }

  /** Registers the protocol and starts replicating with connected peers. Idempotent. */
  async start(): Promise<void> {
    if (this.running) return
    this.running = true
    await this.c.libp2p.handle([...this.protocols], (stream, conn) => this.onInbound(stream, conn), {
      maxInboundStreams: 4,
      maxOutboundStreams: 4,
      runOnLimitedConnection: true,
    })
    this.c.libp2p.addEventListener('peer:connect', this.onConnect)
    this.offInvalid = this.c.store.onInvalidBlock((e) => this.onInvalidBlock(e))
    this.offOpen = this.c.store.onOpen(() => this.onStoreOpen())
    this.c.store.peerOfStream = (stream) =>
      typeof stream === 'object' && stream !== null ? this.streamPeers.get(stream) : undefined
    this.c.store.peersExpected = () => this.fleetPeersConnected()
    for (const p of this.c.libp2p.getPeers()) this.maybeDial(p.toString())
  }

  /** Unregisters the protocol and closes every session. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.c.libp2p.removeEventListener('peer:connect', this.onConnect)
    this.offInvalid?.()
    this.offInvalid = null
    this.offOpen?.()
    this.offOpen = null
    this.c.store.peersExpected = () => 0
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const s of this.sessions.values()) s.close()
    this.sessions.clear()
    await this.c.libp2p.unhandle([...this.protocols]).catch(() => {})
  }

  /** Byte counters (libp2p stream payload: hypercore's protocol bytes, framed or inside its secret-stream). */
  stats(): ReplicationStats {
    const peers: ReplicationStats['peers'] = {}
    for (const [id, s] of this.sessions) peers[id] = { ...s.counters, state: s.state, invalidBlocks: s.invalidBlocks }
    return {
      ...this.totals,
      invalidBlocks: this.invalidTotal,
      blocksIn: this.c.store.blocks.in,
      blocksOut: this.c.store.blocks.out,
      recycles: this.recycles,
      peers,
    }
  }

  /** Closes the session with `peer` (e.g. just revoked); `isFleetPeer` decides whether it may come back. */
  drop(peer: string): void {
    const s = this.sessions.get(peer)
    if (s === undefined) return
    this.sessions.delete(peer)
    s.close()
    this.c.logger.info({ peer }, 'replication session closed')
  }

  /**
   * Closes every session so each restarts clean (see the header); returns how many were closed,
   * 0 when the last recycle is less than `recycleMinMs` ago.
   */
  recycle(reason: string, now = Date.now()): number {
    if (!this.running || now - this.lastRecycle < this.recycleMinMs) return 0
    this.lastRecycle = now
    this.recycles++
    const sessions = [...this.sessions.values()]
    for (const s of sessions) s.close()
    this.c.logger.warn({ reason, sessions: sessions.length }, 'replication sessions restarted')
    return sessions.length
  }

  /** Tries a session with `peer` again (e.g. it was just enrolled), or with every connected peer. */
  reconsider(peer?: string): void {
    if (peer !== undefined) this.maybeDial(peer)
    else for (const p of this.c.libp2p.getPeers()) this.maybeDial(p.toString())
  }

  /** Connected peers that replicate with this node (each has or will have a session). */
  fleetPeersConnected(): number {
    let n = 0
    for (const p of this.c.libp2p.getPeers()) if (this.isFleetPeer(p.toString())) n++
    return n
  }

  /** Peers with an active session. */
  activePeers(): string[] {
    return [...this.sessions].filter(([, s]) => s.state === 'active').map(([id]) => id)
  }

  private maybeDial(peer: string): void {
    if (!this.running || !this.c.store.isOpen || this.sessions.has(peer) || !this.isFleetPeer(peer)) return
    if (this.c.libp2p.peerId.toString() > peer) return // the lower id dials
    const session: Session = {
      state: 'dialing',
      counters: { bytesIn: 0, bytesOut: 0 },
      invalidBlocks: 0,
      close: () => {},
    }
    this.sessions.set(peer, session)
    const open = this.c.libp2p.getConnections().filter((c) => c.remotePeer.toString() === peer && c.status === 'open')
    const target = open.find((c) => c.limits === undefined) ?? open[0] // a direct link before a relayed one
    if (target === undefined) {
      this.sessions.delete(peer)
      return
    }
    // on the connection itself: libp2p's dialProtocol passes over a relayed (limited) one and dials another circuit
    target
      .newStream([...this.protocols], { runOnLimitedConnection: true })
      .then((stream) => {
        if (!this.running || this.sessions.get(peer) !== session) {
          stream.abort(new Error('replicator stopped'))
          return
        }
        this.attach(peer, stream, true, session, target)
      })
      .catch((err: Error) => {
        this.c.logger.debug({ peer, err: err.message }, 'replicate dial failed')
        if (this.sessions.get(peer) === session) this.sessions.delete(peer)
        this.scheduleRedial(peer)
      })
  }

  private onInbound(stream: Stream, conn: Connection): void {
    const peer = conn.remotePeer.toString()
    if (!this.running || !this.isFleetPeer(peer)) {
      stream.abort(new Error('not replicating with this peer'))
      return
    }
    const existing = this.sessions.get(peer)
    if (existing !== undefined) existing.close()
    const session: Session = {
      state: 'dialing',
      counters: { bytesIn: 0, bytesOut: 0 },
      invalidBlocks: 0,
      close: () => {},
    }
    this.sessions.set(peer, session)
    if (this.c.store.isOpen) this.attach(peer, stream, false, session, conn)
    else this.wait(peer, stream, session, conn)
  }

  /** Holds a session a peer dialed until the store opens (see the header). */
  private wait(peer: string, stream: Stream, session: Session, conn: Connection): void {
    session.state = 'waiting'
    session.waiting = { stream, conn }
    const gone = () => {
      if (this.sessions.get(peer) === session && session.state === 'waiting') this.sessions.delete(peer)
    }
    session.close = () => {
      gone()
      stream.abort(new Error('replication session closed'))
    }
    stream.addEventListener('close', gone)
  }

  /** The store opened: attach the sessions peers dialed meanwhile, dial the others. */
  private onStoreOpen(): void {
    if (!this.running) return
    for (const [peer, s] of this.sessions) {
      if (s.state !== 'waiting' || s.waiting === undefined) continue
      const { stream, conn } = s.waiting
      s.waiting = undefined
      if (stream.status === 'open') this.attach(peer, stream, false, s, conn)
      else this.sessions.delete(peer)
    }
    this.reconsider()
  }

  private attach(peer: string, stream: Stream, initiator: boolean, session: Session, conn: Connection): void {
    const { proto, noise, parts } = sessionPipe({
      store: this.c.store.store,
      stream,
      initiator,
      localPeer: this.c.libp2p.peerId.toString(),
      remotePeer: peer,
      limit: this.throttle(conn),
      counters: [session.counters, this.totals],
    })
    if (noise !== undefined) this.streamPeers.set(noise, peer)
    session.state = 'active'
    let closed = false
    const onClose = (err?: Error) => {
      if (closed) return
      closed = true
      if (err) this.c.logger.debug({ peer, err: err.message }, 'replication session ended')
      for (const p of [proto, ...parts]) p.destroy()
      if (this.sessions.get(peer) === session) {
        this.sessions.delete(peer)
        if (initiator) this.scheduleRedial(peer)
      }
    }
    session.close = () => onClose()
    for (const p of [proto, ...parts]) {
      p.on('error', onClose)
      p.on('close', () => onClose())
    }
    this.c.logger.debug({ peer, initiator }, 'replicating')
  }

  /** hypercore refused a block (it is not stored, and hypercore stops asking that peer for the feed). */
  private onInvalidBlock(e: InvalidBlock): void {
    const peer = typeof e.stream === 'object' && e.stream !== null ? this.streamPeers.get(e.stream) : undefined
    this.invalidTotal++
    const session = peer === undefined ? undefined : this.sessions.get(peer)
    if (session !== undefined) session.invalidBlocks++
    this.c.logger.warn(
      { peer: peer ?? 'unknown', feed: e.feed, block: e.block, error: e.error },
      'refused a block that failed verification',
    )
  }

  private scheduleRedial(peer: string): void {
    if (!this.running) return
    const t = setTimeout(() => {
      this.timers.delete(t)
      const connected = this.c.libp2p.getConnections().some((c) => c.remotePeer.toString() === peer)
      if (connected) this.maybeDial(peer)
    }, this.redialMs)
    t.unref()
    this.timers.add(t)
  }
}
