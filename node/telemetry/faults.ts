/**
 * Faults of the periodic work: one release, one peer, one message or one model that fails is
 * caught, counted and shown, and the loop goes on with the next item.
 *
 * How it works: `Faults` keeps, per item (a release `model@version`, a peer, a model…), the error
 * it fails with now. `fail(item, err)` counts every failure (for /metrics) but logs only when the
 * item starts failing or fails differently (code or message changed), so a fault that repeats
 * every second is one log line, not one a second; `ok(item)` clears it (logged once as recovered).
 * `LoopErrors` is one node's set of named loops (`rollout`, `prestage`, `anti-entropy`,
 * `health-report`, `gc`…), each with its Faults, for `llmesh_loop_errors_total{loop}` and /status.
 */
import type { Logger } from '../logger.ts'
import { MAX_FAULT_ITEMS, MAX_FAULT_MESSAGE } from './constants.ts'

/** A stable error code: the error's own `ERR_…` code, else `ERR_INTERNAL` (a bounded label value). */
export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^ERR_[A-Z0-9_]{1,60}$/.test(code) ? code : 'ERR_INTERNAL'
}

/** What an item fails with now. */
export interface Fault {
  item: string
  code: string
  message: string
  /** When it started failing this way (ms). */
  since: number
  /** Latest failure (ms). */
  last: number
  /** Failures since it started failing this way. */
  count: number
}

/** Options. */
export interface FaultsInit {
  /** What failed, for the log line (e.g. `release evaluation failed`). */
  what: string
  /** Extra fields of every log line (e.g. `{ loop: 'gc' }`). */
  fields?: Record<string, unknown>
}

/** The items of one loop that fail now, and how often each (item, code) failed since start. */
export class Faults {
  private readonly log: Logger
  private readonly now: () => number
  private readonly init: FaultsInit
  private readonly current = new Map<string, Fault>()
  private readonly counts = new Map<string, { item: string; code: string; n: number }>()
  /** Failures since start. */
  total = 0

  constructor(components: { logger: Logger; now?: () => number }, init: FaultsInit) {
    this.log = components.logger
    this.now = components.now ?? Date.now
    this.init = init
  }

  /** Counts a failure of `item`; logs it when it is new or different. Returns the fault. */
  fail(item: string, err: unknown): Fault {
    const code = errorCode(err)
    const message = String((err as Error | null)?.message ?? err).slice(0, MAX_FAULT_MESSAGE)
    const now = this.now()
    this.total++
    const ck = `${item}\n${code}`
    const c = this.counts.get(ck)
    if (c !== undefined) c.n++
    else if (this.counts.size < MAX_FAULT_ITEMS) this.counts.set(ck, { item, code, n: 1 })
    const had = this.current.get(item)
    if (had !== undefined && had.code === code && had.message === message) {
      had.last = now
      had.count++
      return had
    }
    const f: Fault = { item, code, message, since: now, last: now, count: 1 }
    if (had !== undefined || this.current.size < MAX_FAULT_ITEMS) this.current.set(item, f)
    this.log.error({ ...this.init.fields, item, code, err }, `${this.init.what}: ${message}`)
    return f
  }

  /** `item` works (again): forgets its fault. */
  ok(item: string): void {
    const had = this.current.get(item)
    if (had === undefined) return
    this.current.delete(item)
    this.log.info({ ...this.init.fields, item, code: had.code, failures: had.count }, `${this.init.what}: recovered`)
  }

  /** The fault of an item, if it fails now. */
  get(item: string): Fault | undefined {
    return this.current.get(item)
  }

  /** Items failing now, by item. */
  list(): Fault[] {
    return [...this.current.values()].sort((a, b) => (a.item < b.item ? -1 : a.item > b.item ? 1 : 0))
  }

  /** Failures per (item, code) since start. */
  totals(): Array<{ item: string; code: string; count: number }> {
    return [...this.counts.values()].map((c) => ({ item: c.item, code: c.code, count: c.n }))
  }
}

/** A failing item of a named loop, as /status shows it. */
export type LoopFault = Fault & { loop: string }

/** One node's named loops and their faults. */
export class LoopErrors {
  private readonly loops = new Map<string, Faults>()
  private readonly others = new Set<LoopErrors>()

  /** The faults of loop `name` (created on first use, logging with `logger`). */
  loop(name: string, logger: Logger, now?: () => number): Faults {
    let f = this.loops.get(name)
    if (f === undefined) {
      f = new Faults({ logger, now }, { what: `${name} loop: one item failed`, fields: { loop: name } })
      this.loops.set(name, f)
    }
    return f
  }

  /** Shows another set's loops with these (e.g. anti-entropy's, made before this node's registry). */
  include(other: LoopErrors): void {
    if (other !== this) this.others.add(other)
  }

  /** Failures per loop since start (every loop this node runs, 0 when none failed). */
  totals(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const o of this.others) for (const [k, n] of Object.entries(o.totals())) out[k] = (out[k] ?? 0) + n
    for (const [k, f] of this.loops) out[k] = (out[k] ?? 0) + f.total
    return out
  }

  /** Items failing now, per loop. */
  failing(): LoopFault[] {
    const out: LoopFault[] = [...this.others].flatMap((o) => o.failing())
    for (const [loop, f] of this.loops) for (const x of f.list()) out.push({ ...x, loop })
    return out
  }

  /** The `loops` section of /status. */
  status(): { errors: Record<string, number>; failing: LoopFault[] } {
    return { errors: this.totals(), failing: this.failing() }
  }
}
