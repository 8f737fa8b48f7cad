/**
 * Range-based set reconciliation of message ids (anti-entropy 2.0.0; docs/protocol.md,
 * "Anti-entropy"). Pure and deterministic: both peers must compute the same keys, bounds and
 * fingerprints, so every choice here is protocol.
 *
 * How it works: each message has a key, `rank ‖ seq ‖ id` in hex (`reconcileKey`), so keys sort
 * dependencies first (trust roots, releases by seq, enrollments, …) and ids spread uniformly inside
 * a rank. A range of keys has a fingerprint: sha256 of the XOR of its ids' first 16 bytes and its
 * count, cut to 16 bytes; prefix XORs make any range's fingerprint O(log n) (two binary searches;
 * reconcile-set.ts). The initiator sends fingerprints of RECONCILE_BRANCH ranges splitting its set; the responder
 * skips the ranges whose fingerprint matches, and splits again those that differ, or sends its ids
 * when it holds at most RECONCILE_LEAF in the range; an id list is answered by a diff. Only ranges
 * that differ are split, so a round costs O(d · log n) bytes for d differences among n messages,
 * in O(log n) round trips. The initiator keeps a queue of open ranges and sends at most
 * RECONCILE_QUERY_RANGES per query, so every reply fits a frame. It ends when nothing is left open, when it has found
 * `work` differences (the rest waits for the next round), or after RECONCILE_MAX_ROUNDS frames.
 */
import { ANTI_ENTROPY_MAX_CONTROL_BYTES, ANTI_ENTROPY_MAX_MESSAGES } from './anti-entropy.ts'
import {
  type QueryFrame,
  type QueryRange,
  type Range,
  RECONCILE_MAX_IDS,
  RECONCILE_MAX_RANGES,
  type ReplyFrame,
  type ReplyRange,
} from './reconcile-frames.ts'
import type { ReconcileSet } from './reconcile-set.ts'

export { idWords, type ReconcileItem, ReconcileSet, reconcileKey } from './reconcile-set.ts'

/** Ranges a differing range is split into. */
export const RECONCILE_BRANCH = 16
/** A side holding at most this many ids in a differing range sends them instead of splitting. */
export const RECONCILE_LEAF = 16
/** Most query frames of one initiator in one session. */
export const RECONCILE_MAX_ROUNDS = 16

/** Limits of one side's frames (defaults: the protocol's). */
export interface ReconcileLimits {
  /** Most ranges per frame. */
  ranges: number
  /** Most ids per frame. */
  ids: number
  /** Most ids a reply offers in its diffs (`g`): what one round can send anyway. */
  diff: number
  /** Most bytes of a frame's ranges, as JSON (an upper estimate: RANGE_BYTES per range, ID_BYTES per id). */
  bytes: number
}

/** Most JSON bytes of a range without its ids: a full bound, a fingerprint, two empty lists, keys. */
const RANGE_BYTES = 140
/** JSON bytes of one id in a list: 64 hex digits, quotes, comma. */
const ID_BYTES = 67
/** Room in a control frame for the ranges: all of it but the hello and the frame's keys. */
export const RECONCILE_MAX_FRAME_BYTES = ANTI_ENTROPY_MAX_CONTROL_BYTES - 16 * 1024

const LIMITS: ReconcileLimits = {
  ranges: RECONCILE_MAX_RANGES,
  ids: RECONCILE_MAX_IDS,
  diff: ANTI_ENTROPY_MAX_MESSAGES,
  bytes: RECONCILE_MAX_FRAME_BYTES,
}

/** The shortest prefix of `next` greater than `prev` (keys are distinct and of one length). */
function between(prev: string, next: string): string {
  let k = 0
  while (k < next.length && prev[k] === next[k]) k++
  return next.slice(0, k + 1)
}

const isSkip = (r: Range): boolean => r.f === undefined && r.i === undefined && r.g === undefined && r.m === undefined

/** Builds a frame's ranges, merging adjacent skips and dropping a trailing one, within limits. */
class RangeWriter {
  readonly out: Range[] = []
  ids = 0
  private readonly limits: ReconcileLimits

  constructor(limits: ReconcileLimits) {
    this.limits = limits
  }

  /** Whether `n` more ranges with `ids` more ids still fit (room is always left for one more skip). */
  fits(n: number, ids: number): boolean {
    const bytes = (this.out.length + n + 1) * RANGE_BYTES + (this.ids + ids) * ID_BYTES
    return this.out.length + n < this.limits.ranges && this.ids + ids <= this.limits.ids && bytes <= this.limits.bytes
  }

  /** Ids that still fit in one more range. */
  room(): number {
    const byBytes = Math.floor((this.limits.bytes - (this.out.length + 2) * RANGE_BYTES) / ID_BYTES) - this.ids
    return Math.max(0, Math.min(this.limits.ids - this.ids, byBytes))
  }

  add(r: Range): void {
    const last = this.out[this.out.length - 1]
    if (isSkip(r) && last !== undefined && isSkip(last)) {
      if (r.b === undefined) delete last.b
      else last.b = r.b
    } else this.out.push(r)
    this.ids += (r.i?.length ?? 0) + (r.g?.length ?? 0) + (r.m?.length ?? 0)
  }

  /** The ranges, with a trailing skip dropped. */
  done(): Range[] {
    const last = this.out[this.out.length - 1]
    if (last !== undefined && isSkip(last)) this.out.pop()
    return this.out
  }
}

/** A range still to reconcile: from `lower` ('' is the start) to `b`, with this side's payload. */
interface Open {
  lower: string
  b?: string
  f?: string
  i?: string[]
}

/** Splits the differing range [lower, upper) of `set` (indexes [lo, hi)): its ids, or fingerprints of sub-ranges. */
function split(set: ReconcileSet, lo: number, hi: number, lower: string, upper: string | undefined): Open[] {
  const n = hi - lo
  if (n <= RECONCILE_LEAF) return [{ lower, b: upper, i: set.ids(lo, hi) }]
  const out: Open[] = []
  let start = lo
  let from = lower
  for (let j = 1; j <= RECONCILE_BRANCH; j++) {
    const end = j === RECONCILE_BRANCH ? hi : lo + Math.floor((j * n) / RECONCILE_BRANCH)
    const b = j === RECONCILE_BRANCH ? upper : between(set.keys[end - 1], set.keys[end])
    out.push({ lower: from, b, f: set.fingerprint(start, end) })
    start = end
    from = b as string
  }
  return out
}

/** Writes split ranges, or one skip when they do not fit (deferred to a later round). */
function addSplit(w: RangeWriter, parts: Open[], upper: string | undefined): void {
  const ids = parts.reduce((n, p) => n + (p.i?.length ?? 0), 0)
  if (!w.fits(parts.length, ids)) {
    w.add({ b: upper })
    return
  }
  for (const p of parts) w.add(p.f !== undefined ? { b: p.b, f: p.f } : { b: p.b, i: p.i })
}

/** Walks a frame's ranges with their index spans in `set`. */
function* spans(set: ReconcileSet, ranges: Range[]): Generator<[Range, number, number]> {
  let lo = 0
  for (const r of ranges) {
    const hi = set.index(r.b)
    yield [r, lo, Math.max(lo, hi)]
    lo = Math.max(lo, hi)
  }
}

/** The responder's answer to a query frame. `wanted` filters the ids of a list it asks for (`m`). */
export function respond(
  set: ReconcileSet,
  ranges: QueryRange[],
  wanted: (id: string) => boolean = () => true,
  limits: ReconcileLimits = LIMITS,
): ReplyRange[] {
  const w = new RangeWriter(limits)
  let offered = 0
  for (const [r, lo, hi] of spans(set, ranges)) {
    if (r.f !== undefined) {
      if (set.fingerprint(lo, hi) === r.f) w.add({ b: r.b })
      else addSplit(w, split(set, lo, hi, '', r.b), r.b)
    } else if (r.i !== undefined) {
      const theirs = new Set(r.i)
      const mine = new Set(set.ids(lo, hi))
      const m = r.i.filter((id) => !mine.has(id) && wanted(id))
      const room = Math.max(0, Math.min(w.room() - m.length, limits.diff - offered))
      const g: string[] = []
      for (let k = lo; k < hi && g.length < room; k++) if (!theirs.has(set.id(k))) g.push(set.id(k))
      if (g.length === 0 && m.length === 0) w.add({ b: r.b })
      else if (!w.fits(1, g.length + m.length)) w.add({ b: r.b })
      else {
        w.add({ b: r.b, g, m })
        offered += g.length
      }
    } else w.add({ b: r.b })
  }
  return w.done()
}

/**
 * Ranges one query may leave open: each may come back split in RECONCILE_BRANCH, after a skip, and
 * the reply must still fit RECONCILE_MAX_RANGES. The rest waits for the next query of the session.
 */
export const RECONCILE_QUERY_RANGES = Math.floor(RECONCILE_MAX_RANGES / (RECONCILE_BRANCH + 1)) - 1

/** Open ranges an initiator keeps at once (what its remaining queries could send). */
const MAX_OPEN = RECONCILE_QUERY_RANGES * RECONCILE_MAX_ROUNDS

/** The initiator's side of one session: the frames it sends, and what it learns. */
export class Initiator {
  private readonly set: ReconcileSet
  private readonly work: number
  /** Ranges still to send, in key order. */
  private todo: Open[] = []
  /** Ids the responder holds that this side lacks. */
  readonly need = new Set<string>()
  /** Ids this side holds that the responder lacks. */
  readonly give = new Set<string>()
  /** Query frames sent. */
  rounds = 0

  /** `work`: differences after which the session ends (the rest is found next round). */
  constructor(set: ReconcileSet, work: number) {
    this.set = set
    this.work = work
  }

  /** The first query: the whole key space. */
  first(): QueryRange[] {
    this.todo = split(this.set, 0, this.set.size, '', undefined)
    return this.query()
  }

  /** The next RECONCILE_QUERY_RANGES open ranges, skips between them. */
  private query(): QueryRange[] {
    this.rounds++
    const out: QueryRange[] = []
    let prev = ''
    for (const o of this.todo.slice(0, RECONCILE_QUERY_RANGES)) {
      if (o.lower !== prev) out.push({ b: o.lower })
      out.push(o.f !== undefined ? { b: o.b, f: o.f } : { b: o.b, i: o.i })
      prev = o.b as string
    }
    this.todo = this.todo.slice(RECONCILE_QUERY_RANGES)
    return out
  }

  /** Takes the responder's answer; returns the next query, or `undefined` when the session is over. */
  next(ranges: ReplyRange[]): QueryRange[] | undefined {
    const opened: Open[] = []
    let lower = ''
    for (const [r, lo, hi] of spans(this.set, ranges)) {
      if (r.f !== undefined) {
        const full = opened.length + this.todo.length >= MAX_OPEN
        if (!full && this.set.fingerprint(lo, hi) !== r.f) opened.push(...split(this.set, lo, hi, lower, r.b))
      } else if (r.i !== undefined || r.g !== undefined || r.m !== undefined) {
        // a list, or a diff: what each side lacks in this range is now known
        const mine = new Set(this.set.ids(lo, hi))
        const theirs = new Set(r.i)
        for (const id of r.i ?? r.g ?? []) if (!mine.has(id)) this.need.add(id)
        if (r.i !== undefined) for (const id of mine) if (!theirs.has(id)) this.give.add(id)
        for (const id of r.m ?? []) if (mine.has(id)) this.give.add(id)
      }
      lower = r.b ?? lower
    }
    // what the reply opened lies inside what was sent, so before what is left; bounded (a hostile
    // responder's replies differ everywhere): what does not fit waits for the next session
    this.todo = [...opened, ...this.todo].slice(0, MAX_OPEN)
    if (this.todo.length === 0 || this.rounds >= RECONCILE_MAX_ROUNDS || this.need.size + this.give.size >= this.work)
      return undefined
    return this.query()
  }
}

export type { QueryFrame, ReplyFrame }
