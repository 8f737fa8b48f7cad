/**
 * One anti-entropy round on a libp2p stream, either side (node/mesh/anti-entropy.ts owns the
 * schedule, the budgets' use and the counters). Dialling offers the protocols newest first, so
 * multistream-select picks the newest both speak; answering refuses at once a peer over its budget.
 * The negotiated version's round (anti-entropy-rounds.ts) runs under one deadline, on frames of at
 * most MAX_WIRE_SIZE bytes; the stream is closed when the round is done and aborted on any error.
 * `pickMessages` bounds what one round sends, dependencies first.
 */
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import type { Libp2p } from 'libp2p'
import { MAX_WIRE_SIZE, PROTOCOL_ANTI_ENTROPY, PROTOCOL_ANTI_ENTROPY_V1 } from '../../protocols/constants.ts'
import { BudgetError, type PeerBudgets } from './anti-entropy-budget.ts'
import { order } from './anti-entropy-frames.ts'
import {
  initiateV1,
  initiateV2,
  type RoundHost,
  type RoundIo,
  respondV1,
  respondV2,
  type SyncResult,
} from './anti-entropy-rounds.ts'
import type { StoredMessage } from './types.ts'

/** The protocols of anti-entropy, newest first. */
export const AE_PROTOCOLS = [PROTOCOL_ANTI_ENTROPY, PROTOCOL_ANTI_ENTROPY_V1]

/** What a round on a stream uses. */
export interface RoundStreams {
  libp2p: Libp2p
  host: RoundHost
  budgets: PeerBudgets
  timeoutMs: number
  /** Rounds run per protocol version (incremented here). */
  versions: { v1: number; v2: number }
}

function roundIo(stream: Stream, peer: PeerId, signal: AbortSignal): RoundIo {
  return {
    lp: lpStream(stream, { maxDataLength: MAX_WIRE_SIZE }),
    peer,
    signal,
    res: { peer: peer.toString(), received: 0, sent: 0, rejected: 0 },
  }
}

/** Dials `peer` and runs one round as the initiator. */
export async function dialRound(s: RoundStreams, peer: PeerId): Promise<SyncResult> {
  const signal = AbortSignal.timeout(s.timeoutMs)
  // the newest version both speak (multistream-select negotiates)
  // on an open connection when there is one: libp2p's dialProtocol passes over a relayed (limited)
  // connection and dials another circuit through the relay (a node behind NAT has no other link)
  const conns = s.libp2p.getConnections(peer).filter((c) => c.status === 'open')
  const open = conns.find((c) => c.limits === undefined) ?? conns[0]
  const opts = { signal, runOnLimitedConnection: true }
  const stream = await (open === undefined
    ? s.libp2p.dialProtocol(peer, AE_PROTOCOLS, opts)
    : open.newStream(AE_PROTOCOLS, opts))
  const io = roundIo(stream, peer, signal)
  const v2 = stream.protocol !== PROTOCOL_ANTI_ENTROPY_V1
  await runSide(s, stream, signal, v2, () => (v2 ? initiateV2 : initiateV1)(s.host, io))
  return io.res
}

/**
 * Answers one round on an inbound stream of `protocol`. Resolves its result, or undefined when the
 * peer is over its budget (the stream is aborted at once); rejects when the round failed (the
 * stream is aborted).
 */
export async function answerRound(
  s: RoundStreams,
  stream: Stream,
  connection: Connection,
  protocol: string,
): Promise<SyncResult | undefined> {
  const signal = AbortSignal.timeout(s.timeoutMs)
  const io = roundIo(stream, connection.remotePeer, signal)
  if (s.budgets.blocked(io.res.peer)) {
    stream.abort(new BudgetError('frames', io.res.peer))
    return undefined
  }
  const v2 = protocol === PROTOCOL_ANTI_ENTROPY
  await runSide(s, stream, signal, v2, () => (v2 ? respondV2 : respondV1)(s.host, io))
  return io.res
}

/** Runs one side of a round, counts its protocol version and closes the stream; aborts it on failure. */
async function runSide(
  s: RoundStreams,
  stream: Stream,
  signal: AbortSignal,
  v2: boolean,
  side: () => Promise<unknown>,
): Promise<void> {
  try {
    await side()
    s.versions[v2 ? 'v2' : 'v1']++
    await stream.close({ signal })
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

/** Orders messages (dependencies first) and keeps what fits in `maxMessages` and `maxBytes`. */
export function pickMessages(msgs: StoredMessage[], maxMessages: number, maxBytes: number): StoredMessage[] {
  msgs.sort(order)
  const out: StoredMessage[] = []
  let bytes = 0
  for (const m of msgs) {
    if (out.length >= maxMessages || bytes + m.bytes.byteLength > maxBytes) break
    out.push(m)
    bytes += m.bytes.byteLength
  }
  return out
}
