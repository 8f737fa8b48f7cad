/**
 * One whole reconciliation session between two in-memory sets, frames encoded and decoded as on
 * the wire (`decodeFrame`, with every pre-parse check): what tests and bench/reconcile.ts measure.
 * The node runs the same steps over a libp2p stream (node/mesh/anti-entropy-v2.ts).
 */
import { decodeFrame } from './anti-entropy.ts'
import { type Initiator, type ReconcileSet, respond } from './reconcile.ts'
import { QueryFrame, ReplyFrame } from './reconcile-frames.ts'

const encoder = new TextEncoder()

/** What one session found and cost. */
export interface SessionResult {
  /** Ids the responder holds that the initiator lacks (found this session). */
  need: Set<string>
  /** Ids the initiator holds that the responder lacks (found this session). */
  give: Set<string>
  /** Query/reply exchanges. */
  roundTrips: number
  /** Control bytes sent each way. */
  bytesQuery: number
  bytesReply: number
}

function wire<T>(value: unknown, schema: Parameters<typeof decodeFrame<T>>[1]): { bytes: number; value: T } {
  const bytes = encoder.encode(JSON.stringify(value))
  const r = decodeFrame(bytes, schema)
  if (!r.ok) throw r.error
  return { bytes: bytes.byteLength, value: r.value }
}

/** Runs `initiator` against `responder` until the initiator ends the session. */
export function runSession(
  initiator: Initiator,
  responder: ReconcileSet,
  wanted?: (id: string) => boolean,
): SessionResult {
  const res: SessionResult = { need: initiator.need, give: initiator.give, roundTrips: 0, bytesQuery: 0, bytesReply: 0 }
  let query: QueryFrame['ranges'] | undefined = initiator.first()
  while (query !== undefined) {
    const q = wire({ ranges: query }, QueryFrame)
    res.bytesQuery += q.bytes
    const r = wire({ ranges: respond(responder, q.value.ranges, wanted) }, ReplyFrame)
    res.bytesReply += r.bytes
    res.roundTrips++
    query = initiator.next(r.value.ranges)
  }
  return res
}
