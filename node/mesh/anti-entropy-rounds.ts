/**
 * The two versions of an anti-entropy round, each side (node/mesh/anti-entropy.ts schedules them
 * and owns the budgets; docs/protocol.md, "Anti-entropy").
 *
 * Version 2 (`/llmesh/anti-entropy/2.0.0`): range-based set reconciliation (protocols/reconcile.ts)
 * finds the difference in O(d · log n) bytes and O(log n) round trips; then the initiator sends an
 * OfferFrame {want, offer}, the responder a WantFrame {want: ids of the offer it lacks, count} +
 * the messages the initiator wanted, and the initiator a CountFrame + the messages asked for.
 * Version 1 (`/llmesh/anti-entropy/1.0.0`, kept for nodes not yet upgraded): the initiator's whole
 * id list (cut at 20,000), answered by everything the list lacks.
 * Every frame read goes through the peer guard (budgets, pre-parse checks); the CPU of answering a
 * peer's ranges is charged to that peer.
 */
import type { PeerId } from '@libp2p/interface'
import type { lpStream } from '@libp2p/utils'
import { ANTI_ENTROPY_MAX_DIGESTS } from '../../protocols/anti-entropy.ts'
import { VerificationError } from '../../protocols/errors.ts'
import { Initiator, RECONCILE_MAX_ROUNDS, respond } from '../../protocols/reconcile.ts'
import type { QueryRange } from '../../protocols/reconcile-frames.ts'
import { CountFrame, HaveFrame, type Hello, NextFrame, ReplyFrame, WantFrame } from './anti-entropy-frames.ts'
import type { PeerGuard } from './anti-entropy-guard.ts'
import type { Ingest } from './ingest.ts'
import type { MessageStore } from './message-store.ts'
import type { StoredMessage } from './types.ts'

const encoder = new TextEncoder()

/** Result of one anti-entropy round with one peer. */
export interface SyncResult {
  peer: string
  /** Messages received and accepted. */
  received: number
  /** Messages sent. */
  sent: number
  /** Received messages that failed verification. */
  rejected: number
  /** Reconciliation frames exchanged each way (version 2). */
  roundTrips?: number
}

/** What a round uses of its anti-entropy instance. */
export interface RoundHost {
  store: MessageStore
  ingest: Ingest
  guard: PeerGuard
  hello: Hello | undefined
  healthWindowMs: number
  /** Most messages one round sends each way. */
  maxMessages: number
  /** Orders messages (dependencies first) and bounds them by count and bytes. */
  pick(msgs: StoredMessage[]): StoredMessage[]
  /** Ingests one received message. */
  receive(res: SyncResult, bytes: Uint8Array, peer: PeerId): Promise<void>
  gotHello(peer: string, hello: Hello | undefined): void
}

/** One side of one round on an open stream. */
export interface RoundIo {
  lp: ReturnType<typeof lpStream>
  peer: PeerId
  signal: AbortSignal
  res: SyncResult
}

const write = (io: RoundIo, value: unknown) => io.lp.write(encoder.encode(JSON.stringify(value)), { signal: io.signal })

/** Whether this node would take the message with this id (not held, not dropped, not refused for good). */
const wanted = (h: RoundHost) => (d: string) => !h.store.known(d) && !h.ingest.wasRejected(d)

/** The held messages among `ids`, ordered and bounded. */
const held = (h: RoundHost, ids: string[]) =>
  h.pick(ids.filter((d) => h.store.has(d)).map((d) => h.store.get(d) as StoredMessage))

async function sendAll(io: RoundIo, msgs: StoredMessage[]): Promise<void> {
  for (const m of msgs) await io.lp.write(m.bytes, { signal: io.signal })
  io.res.sent = msgs.length
}

async function receiveAll(h: RoundHost, io: RoundIo, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await h.receive(io.res, await h.guard.frame(io.lp, io.peer, io.signal), io.peer)
}

/** Version 2, initiator: reconcile, then offer and want. */
export async function initiateV2(h: RoundHost, io: RoundIo): Promise<void> {
  const ini = new Initiator(h.store.syncSet(Date.now(), h.healthWindowMs), h.maxMessages)
  let query: QueryRange[] | undefined = ini.first()
  await write(io, { ranges: query, hello: h.hello })
  let trips = 0
  while (query !== undefined) {
    const reply = await h.guard.control(io.lp, io.peer, io.signal, ReplyFrame)
    if (trips++ === 0) h.gotHello(io.res.peer, reply.hello)
    const cpu = process.threadCpuUsage()
    query = ini.next(reply.ranges)
    h.guard.charge(io.peer, cpu)
    if (query !== undefined) await write(io, { ranges: query })
  }
  io.res.roundTrips = trips
  // in key order (dependencies first), and no more than one round can send: an empty peer would
  // otherwise be offered everything, past the control frame limit
  const offer = [...ini.give].slice(0, h.maxMessages)
  await write(io, { want: [...ini.need].filter(wanted(h)).slice(0, h.maxMessages), offer })
  const answer = await h.guard.control(io.lp, io.peer, io.signal, WantFrame)
  await receiveAll(h, io, answer.count)
  const offered = new Set(offer)
  const msgs = held(
    h,
    answer.want.filter((d) => offered.has(d)),
  )
  await write(io, { count: msgs.length })
  await sendAll(io, msgs)
}

/** Version 2, responder: answer queries until the offer, then send what was wanted and take what was offered. */
export async function respondV2(h: RoundHost, io: RoundIo): Promise<void> {
  let next = await h.guard.control(io.lp, io.peer, io.signal, NextFrame)
  if ('ranges' in next) h.gotHello(io.res.peer, next.hello)
  let set: ReturnType<MessageStore['syncSet']> | undefined
  let trips = 0
  while ('ranges' in next) {
    if (++trips > RECONCILE_MAX_ROUNDS) {
      const err = new VerificationError('ERR_SCHEMA', `more than ${RECONCILE_MAX_ROUNDS} reconciliation frames`)
      h.guard.invalidFrame(io.peer, err)
      throw err
    }
    const cpu = process.threadCpuUsage()
    set ??= h.store.syncSet(Date.now(), h.healthWindowMs)
    const ranges = respond(set, next.ranges, wanted(h))
    h.guard.charge(io.peer, cpu)
    await write(io, trips === 1 ? { ranges, hello: h.hello } : { ranges })
    next = await h.guard.control(io.lp, io.peer, io.signal, NextFrame)
  }
  io.res.roundTrips = trips
  const want = next.offer.filter(wanted(h)).slice(0, h.maxMessages)
  const msgs = held(h, next.want)
  await write(io, { want, count: msgs.length })
  await sendAll(io, msgs)
  const { count } = await h.guard.control(io.lp, io.peer, io.signal, CountFrame)
  await receiveAll(h, io, count)
}

/** Version 1, initiator: the id list, cut at 20,000. */
export async function initiateV1(h: RoundHost, io: RoundIo): Promise<void> {
  const have = h.store.syncDigests(Date.now(), h.healthWindowMs).slice(0, ANTI_ENTROPY_MAX_DIGESTS)
  await write(io, { have, hello: h.hello })
  const want = await h.guard.control(io.lp, io.peer, io.signal, WantFrame)
  h.gotHello(io.res.peer, want.hello)
  await receiveAll(h, io, want.count)
  const msgs = held(h, want.want)
  await write(io, { count: msgs.length })
  await sendAll(io, msgs)
}

/** Version 1, responder: what the list lacks, and the ids of the list this node wants. */
export async function respondV1(h: RoundHost, io: RoundIo): Promise<void> {
  const first = await h.guard.control(io.lp, io.peer, io.signal, HaveFrame)
  h.gotHello(io.res.peer, first.hello)
  const theirs = new Set(first.have)
  const want = first.have.filter(wanted(h))
  const mine = h.store.syncDigests(Date.now(), h.healthWindowMs).filter((d) => !theirs.has(d))
  const msgs = held(h, mine)
  await write(io, { want, count: msgs.length, hello: h.hello })
  await sendAll(io, msgs)
  const { count } = await h.guard.control(io.lp, io.peer, io.signal, CountFrame)
  await receiveAll(h, io, count)
}
