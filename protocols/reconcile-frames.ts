/**
 * The frames of range-based set reconciliation (PROTOCOL_ANTI_ENTROPY 2.0.0, docs/protocol.md,
 * "Anti-entropy"), decoded with `decodeFrame` (size and nesting checked on the raw bytes first).
 *
 * A frame's ranges tile the key space in order: each range runs from the previous range's bound
 * (the first from the lowest key) up to its own bound `b`, exclusive; the last range may omit `b`
 * (up to the end); past the last range nothing more is asked. A range with no payload is a skip.
 *
 *   QueryRange  (initiator → responder)  {b?, f: fingerprint} | {b?, i: [id…]} | {b?}
 *   ReplyRange  (responder → initiator)  the same, or {b?, g: [id…], m: [id…]} (a diff)
 */
import * as z from 'zod'
import { ANTI_ENTROPY_MAX_DIGESTS, Hello } from './anti-entropy.ts'
import { Sha256Hex } from './schemas/common.ts'

/** Most ranges in one reconciliation frame. */
export const RECONCILE_MAX_RANGES = 8_192
/** Length of a key: type rank (1 hex digit), sequence number (12), id (64). */
export const RECONCILE_KEY_LENGTH = 77
/** Most ids in one reconciliation frame, all ranges together (a frame stays under the control frame limit). */
export const RECONCILE_MAX_IDS = ANTI_ENTROPY_MAX_DIGESTS

/** A range's upper bound: a key prefix (lowercase hex). */
export const Bound = z
  .string()
  .min(1)
  .max(RECONCILE_KEY_LENGTH)
  .regex(/^[0-9a-f]+$/)
/** A range's fingerprint: 16 bytes, hex. */
export const Fingerprint = z.string().regex(/^[0-9a-f]{32}$/)

const ids = z.array(Sha256Hex).max(RECONCILE_MAX_IDS)

/** A range of the initiator: a fingerprint, its complete id list, or a skip. */
export const QueryRange = z.strictObject({ b: Bound.optional(), f: Fingerprint.optional(), i: ids.optional() })
export type QueryRange = z.infer<typeof QueryRange>

/**
 * A range of the responder: as a query range, or a diff answering an id list: `g` ids the
 * responder holds that the list lacks (maybe only the first ones), `m` ids of the list it lacks.
 */
export const ReplyRange = z.strictObject({
  b: Bound.optional(),
  f: Fingerprint.optional(),
  i: ids.optional(),
  g: ids.optional(),
  m: ids.optional(),
})
export type ReplyRange = z.infer<typeof ReplyRange>

/** Any range: what the reconciliation logic handles. */
export type Range = ReplyRange

/** Bounds strictly increase, only the last range may omit its bound, one payload per range, ids bounded in total. */
function tiles(ranges: Range[], ctx: z.RefinementCtx): void {
  let prev = ''
  let total = 0
  for (let k = 0; k < ranges.length; k++) {
    const r = ranges[k]
    if (r.b === undefined ? k !== ranges.length - 1 : r.b <= prev)
      ctx.addIssue({ code: 'custom', message: `range ${k}: bounds must increase, only the last may be open` })
    if (r.b !== undefined) prev = r.b
    const payloads =
      Number(r.f !== undefined) + Number(r.i !== undefined) + Number(r.g !== undefined || r.m !== undefined)
    if (payloads > 1) ctx.addIssue({ code: 'custom', message: `range ${k}: more than one payload` })
    total += (r.i?.length ?? 0) + (r.g?.length ?? 0) + (r.m?.length ?? 0)
  }
  if (total > RECONCILE_MAX_IDS) ctx.addIssue({ code: 'custom', message: `more than ${RECONCILE_MAX_IDS} ids` })
}

/** Initiator → responder: the next ranges to reconcile (the first frame carries the hello). */
export const QueryFrame = z.strictObject({
  ranges: z.array(QueryRange).max(RECONCILE_MAX_RANGES).superRefine(tiles),
  hello: Hello.optional(),
})
export type QueryFrame = z.infer<typeof QueryFrame>

/** Responder → initiator: its answer to each range (the first answer carries its hello). */
export const ReplyFrame = z.strictObject({
  ranges: z.array(ReplyRange).max(RECONCILE_MAX_RANGES).superRefine(tiles),
  hello: Hello.optional(),
})
export type ReplyFrame = z.infer<typeof ReplyFrame>

/**
 * Initiator → responder, ending reconciliation: the ids it wants from the responder and the ids it
 * can send. The responder answers with a WantFrame (ids of `offer` it wants, + the messages of
 * `want` it holds) and the initiator with a CountFrame, as in version 1.
 */
export const OfferFrame = z.strictObject({
  want: z.array(Sha256Hex).max(RECONCILE_MAX_IDS),
  offer: z.array(Sha256Hex).max(RECONCILE_MAX_IDS),
})
export type OfferFrame = z.infer<typeof OfferFrame>

/** What the responder reads after its hello: another query, or the offer that ends reconciliation. */
export const NextFrame = z.union([QueryFrame, OfferFrame])
export type NextFrame = z.infer<typeof NextFrame>
