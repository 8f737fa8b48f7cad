/**
 * Anti-entropy: a request/response exchange over PROTOCOL_ANTI_ENTROPY that brings two peers to the
 * same set of messages, so a node that was off for days catches up without the seed.
 * Rounds (anti-entropy-rounds.ts): version 2 reconciles key ranges (protocols/reconcile.ts) in
 * O(d · log n) bytes; version 1 (whole id lists) is still answered and dialled.
 * Lists and totals are bounded
 * (what does not fit goes in the next round). Every received message goes through the same ingest
 * (verification) as gossip. Messages are sent trust roots first, then releases by sequence, then
 * enrollments, revocations, commands, verdicts and health reports, so dependencies arrive first.
 * A round runs with a peer when this node dials it (outbound connection) and with every connected
 * peer at an interval (with jitter).
 * Fault isolation: a message whose ingest throws, or a listener of `hello`/`sync` that throws, is
 * an `anti-entropy` loop error (counted in `llmesh_loop_errors_total`, logged once per change); the
 * round goes on with the next message, and the schedule with the next round. A peer that fails a
 * round (gone, timed out, hostile bytes) is counted in `counters.failures` only: the network's
 * weather, not a fault of this node.
 * Streams (anti-entropy-streams.ts): the dial or answer of one round, and what a round may send.
 * Budgets (anti-entropy-budget.ts): every frame a peer sends is charged to its per-interval frame,
 * byte and CPU budgets; control frames are size- and nesting-checked before parsing
 * (protocols/anti-entropy.ts); an undecodable control frame or a message refused for good is an
 * invalid frame, and too many of them disconnect the peer and cost it gossip score.
 */
import { EventEmitter } from 'node:events'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { ANTI_ENTROPY_MAX_MESSAGES } from '../../protocols/anti-entropy.ts'
import {
  ANTI_ENTROPY_HEALTH_WINDOW_MS,
  ANTI_ENTROPY_INTERVAL_MS,
  ANTI_ENTROPY_MAX_HELLOS,
  ANTI_ENTROPY_MAX_RESPONSE_BYTES,
  ANTI_ENTROPY_RETRIES,
  ANTI_ENTROPY_RETRY_MS,
  ANTI_ENTROPY_TIMEOUT_MS,
} from '../constants.ts'
import type { Logger } from '../logger.ts'
import { type Faults, LoopErrors } from '../telemetry/faults.ts'
import { type BudgetLimits, PeerBudgets } from './anti-entropy-budget.ts'
import { Hello } from './anti-entropy-frames.ts'
import { PeerGuard } from './anti-entropy-guard.ts'
import type { RoundHost, SyncResult } from './anti-entropy-rounds.ts'
import { AE_PROTOCOLS, answerRound, dialRound, pickMessages, type RoundStreams } from './anti-entropy-streams.ts'
import { AE_MAX_INBOUND_STREAMS } from './constants.ts'
import type { Ingest } from './ingest.ts'
import type { MessageStore } from './message-store.ts'

export type { SyncResult }
export { Hello }

/** Options of anti-entropy. */
export interface AntiEntropyInit {
  /** This node's self-description, sent in every round. */
  hello?: Hello
  intervalMs?: number
  /** Only health reports newer than this are exchanged. */
  healthWindowMs?: number
  timeoutMs?: number
  maxMessages?: number
  maxResponseBytes?: number
  /** Per-peer budgets beyond the defaults (tests). */
  budget?: Partial<BudgetLimits>
}

/** What anti-entropy uses. */
export interface AntiEntropyComponents {
  libp2p: Libp2p
  store: MessageStore
  ingest: Ingest
  logger: Logger
  /** Where this loop's faults go (default: a set of its own, `antiEntropy.loops`). */
  loops?: LoopErrors
  /** Lowers a peer's gossip score (a behaviour penalty); none: disconnecting only. */
  penalize?: (peer: PeerId, penalty: number) => void
}

/** Events of anti-entropy. */
export interface AntiEntropyEvents {
  /** A peer described itself. */
  hello: [{ peer: string; hello: Hello }]
  /** A round finished. */
  sync: [SyncResult]
}

/** The anti-entropy protocol handler and its scheduler. */
export class AntiEntropy extends EventEmitter<AntiEntropyEvents> {
  private readonly libp2p: Libp2p
  private readonly store: MessageStore
  private readonly ingest: Ingest
  private readonly log: Logger
  private readonly hello: Hello | undefined
  /** The last self-description of each peer. */
  readonly hellos = new Map<string, Hello>()
  private readonly intervalMs: number
  private readonly timeoutMs: number
  private readonly healthWindowMs: number
  private readonly maxMessages: number
  private readonly maxBytes: number
  private timer: NodeJS.Timeout | undefined
  private started = false
  private readonly running = new Map<string, Promise<SyncResult>>()
  private readonly onConnect = (evt: CustomEvent<Connection>): void => {
    if (evt.detail.direction === 'outbound') void this.syncQuiet(evt.detail.remotePeer)
  }
  /** Totals since start (`errors`: items this node failed on, see `loops`). */
  readonly counters = { rounds: 0, received: 0, sent: 0, failures: 0, errors: 0 }
  /** The loop-error set holding this loop's faults (`anti-entropy`). */
  readonly loops: LoopErrors
  private readonly faults: Faults
  /** Per-peer budgets, with what they refused. */
  readonly budgets: PeerBudgets
  private readonly guard: PeerGuard
  /** What the rounds (anti-entropy-rounds.ts) use of this instance. */
  private readonly host: RoundHost
  /** What a round on a stream (anti-entropy-streams.ts) uses. */
  private readonly streams: RoundStreams
  /** Rounds run per protocol version, either side. */
  readonly versions = { v1: 0, v2: 0 }

  constructor(components: AntiEntropyComponents, init: AntiEntropyInit) {
    super()
    this.hello = init.hello
    this.libp2p = components.libp2p
    this.store = components.store
    this.ingest = components.ingest
    this.log = components.logger
    this.loops = components.loops ?? new LoopErrors()
    this.faults = this.loops.loop('anti-entropy', this.log)
    this.intervalMs = init.intervalMs ?? ANTI_ENTROPY_INTERVAL_MS
    this.timeoutMs = init.timeoutMs ?? ANTI_ENTROPY_TIMEOUT_MS
    this.healthWindowMs = init.healthWindowMs ?? ANTI_ENTROPY_HEALTH_WINDOW_MS
    this.maxMessages = init.maxMessages ?? ANTI_ENTROPY_MAX_MESSAGES
    this.maxBytes = init.maxResponseBytes ?? ANTI_ENTROPY_MAX_RESPONSE_BYTES
    this.budgets = new PeerBudgets(init.budget)
    this.guard = new PeerGuard({
      budgets: this.budgets,
      logger: this.log,
      hangUp: (peer) => this.libp2p.hangUp(peer),
      penalize: components.penalize,
    })
    this.host = {
      store: this.store,
      ingest: this.ingest,
      guard: this.guard,
      hello: this.hello,
      healthWindowMs: this.healthWindowMs,
      maxMessages: this.maxMessages,
      pick: (msgs) => pickMessages(msgs, this.maxMessages, this.maxBytes),
      receive: (res, bytes, peer) => this.receive(res, bytes, peer),
      gotHello: (peer, hello) => this.gotHello(peer, hello),
    }
    this.streams = {
      libp2p: this.libp2p,
      host: this.host,
      budgets: this.budgets,
      timeoutMs: this.timeoutMs,
      versions: this.versions,
    }
  }

  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    for (const protocol of AE_PROTOCOLS)
      await this.libp2p.handle(protocol, (stream, connection) => this.respond(stream, connection, protocol), {
        maxInboundStreams: AE_MAX_INBOUND_STREAMS,
        runOnLimitedConnection: true, // a node behind NAT syncs through a relay
      })
    this.libp2p.addEventListener('connection:open', this.onConnect)
    this.schedule()
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    clearTimeout(this.timer)
    this.timer = undefined
    this.libp2p.removeEventListener('connection:open', this.onConnect)
    for (const protocol of AE_PROTOCOLS) {
      try {
        await this.libp2p.unhandle(protocol)
      } catch {
        // libp2p may already be stopping
      }
    }
    await Promise.allSettled([...this.running.values()])
  }

  /** Runs one round with every connected peer. */
  async syncAll(): Promise<SyncResult[]> {
    const peers = new Map(this.libp2p.getConnections().map((c) => [c.remotePeer.toString(), c.remotePeer]))
    const out = await Promise.allSettled([...peers.values()].map((p) => this.sync(p)))
    return out.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  }

  /** Runs one round with one peer (joins a round already running with it). */
  sync(peer: PeerId): Promise<SyncResult> {
    const key = peer.toString()
    const existing = this.running.get(key)
    if (existing !== undefined) return existing
    const p = this.initiate(peer).finally(() => this.running.delete(key))
    this.running.set(key, p)
    return p
  }

  /** A round on connect; a failure is retried a few times with backoff while the peer stays connected. */
  private async syncQuiet(peer: PeerId, attempt = 0): Promise<void> {
    try {
      await this.sync(peer)
    } catch (err) {
      this.counters.failures++
      this.log.debug({ err, peer: peer.toString(), attempt }, 'anti-entropy round failed')
      if (attempt >= ANTI_ENTROPY_RETRIES || !this.started) return
      const t = setTimeout(
        () => {
          if (this.started && this.libp2p.getConnections(peer).length > 0) void this.syncQuiet(peer, attempt + 1)
        },
        ANTI_ENTROPY_RETRY_MS * (attempt + 1) * (0.5 + Math.random()),
      )
      t.unref()
    }
  }

  private schedule(): void {
    if (!this.started) return
    const delay = this.intervalMs * (0.75 + Math.random() * 0.5)
    this.timer = setTimeout(() => {
      void this.syncAll()
        .then(
          () => this.faults.ok('schedule'),
          (err) => this.fault('schedule', err),
        )
        .finally(() => this.schedule())
    }, delay)
    this.timer.unref()
  }

  private async initiate(peer: PeerId): Promise<SyncResult> {
    const res = await dialRound(this.streams, peer)
    this.done(res)
    return res
  }

  private async respond(stream: Stream, connection: Connection, protocol: string): Promise<void> {
    try {
      const res = await answerRound(this.streams, stream, connection, protocol)
      if (res !== undefined) this.done(res)
    } catch (err) {
      this.counters.failures++
      this.log.debug({ err, peer: connection.remotePeer.toString() }, 'anti-entropy response failed')
    }
  }

  /** Ingests one received message; one that throws is a loop error, and the round goes on. */
  private receive(res: SyncResult, bytes: Uint8Array, peer: PeerId): Promise<void> {
    return this.guard.message(this.ingest, res, bytes, peer, (err) =>
      err === undefined ? this.faults.ok('ingest') : this.fault('ingest', err),
    )
  }

  private fault(item: string, err: unknown): void {
    this.counters.errors++
    this.faults.fail(item, err)
  }

  /** Emits an event; a listener that throws is a loop error, never the round's end. */
  private tell<K extends keyof AntiEntropyEvents>(event: K, ...args: AntiEntropyEvents[K]): void {
    try {
      this.emit(event, ...(args as never))
      this.faults.ok(`${event} listener`)
    } catch (err) {
      this.fault(`${event} listener`, err)
    }
  }

  private gotHello(peer: string, hello: Hello | undefined): void {
    if (hello === undefined) return
    // bounded: re-inserting moves the peer to the newest end; the oldest goes past the cap
    this.hellos.delete(peer)
    this.hellos.set(peer, hello)
    if (this.hellos.size > ANTI_ENTROPY_MAX_HELLOS) this.hellos.delete(this.hellos.keys().next().value as string)
    this.tell('hello', { peer, hello })
  }

  private done(res: SyncResult): void {
    this.tell('sync', res)
    this.counters.rounds++
    this.counters.received += res.received
    this.counters.sent += res.sent
    if (res.received > 0 || res.sent > 0) {
      this.log.info(
        { remote: res.peer, received: res.received, sent: res.sent, rejected: res.rejected },
        'anti-entropy round',
      )
    }
  }
}
