/**
 * The health window: what happened on this device since the last report, per model version.
 * Requests feed a mergeable latency sketch (`addValue` per request), counts of errors and tokens,
 * and the highest concurrency seen; health events (restarts, OOMs, load and probe failures,
 * rollbacks) are counted against the version they happened on. `fold()` hands the window over
 * in the HealthReport's shape and starts a new one. No prompt or completion text comes in here.
 */
import { addValue, newSketch, toWire } from '../../protocols/rollout/sketch.ts'
import type { HealthEvents, InferenceStats } from '../../protocols/schemas/health.ts'
import { MAX_VERSIONS_PER_REPORT } from './constants.ts'

/** A model version. */
export interface VersionRef {
  model: string
  version: string
}

/** One finished request (counts and timings only). */
export interface RequestSample {
  ok: boolean
  latencyMs: number
  ttftMs?: number
  tokensIn: number
  tokensOut: number
}

/** Names of health events. */
export type HealthEventKind = keyof HealthEvents

/** What one window folds into. */
export interface FoldedWindow {
  start: number
  end: number
  inference: InferenceStats[]
  events: Array<{ model: string; version: string; counts: HealthEvents }>
}

const key = (r: VersionRef): string => `${r.model}@${r.version}`
const emptyEvents = (): HealthEvents => ({ restarts: 0, ooms: 0, load_failures: 0, probe_failures: 0, rollbacks: 0 })

/** Accumulates one report window. */
export class HealthWindow {
  private start: number
  private stats = new Map<string, InferenceStats>()
  private events = new Map<string, { model: string; version: string; counts: HealthEvents }>()

  constructor(start: number) {
    this.start = start
  }

  /** Start of the current window. */
  get startedAt(): number {
    return this.start
  }

  /** Whether anything was recorded in this window. */
  get empty(): boolean {
    return this.stats.size === 0 && this.events.size === 0
  }

  /** Records one request served by `ref`. */
  request(ref: VersionRef, s: RequestSample): void {
    const st = this.statsOf(ref)
    st.requests++
    if (!s.ok) st.errors++
    st.tokens_in += s.tokensIn
    st.tokens_out += s.tokensOut
    st.latency_ms = addValue(st.latency_ms, Math.max(0, s.latencyMs))
    if (s.ttftMs !== undefined) st.ttft_ms = addValue(st.ttft_ms ?? newSketch(), Math.max(0, s.ttftMs))
  }

  /** Records the concurrency in force on `ref`. */
  concurrency(ref: VersionRef, active: number): void {
    const st = this.statsOf(ref)
    if (active > st.concurrency_max) st.concurrency_max = active
  }

  /** Counts a health event against `ref`. */
  event(ref: VersionRef, kind: HealthEventKind, n = 1): void {
    let e = this.events.get(key(ref))
    if (e === undefined) {
      e = { model: ref.model, version: ref.version, counts: emptyEvents() }
      this.events.set(key(ref), e)
    }
    e.counts[kind] += n
  }

  /** Hands the window over (ending at `end`) and starts the next one at `end`. */
  fold(end: number): FoldedWindow {
    const out: FoldedWindow = {
      start: this.start,
      end: Math.max(end, this.start),
      inference: [...this.stats.values()].slice(0, MAX_VERSIONS_PER_REPORT).map((s) => {
        const o: InferenceStats = { ...s, latency_ms: toWire(s.latency_ms) }
        if (s.ttft_ms !== undefined) o.ttft_ms = toWire(s.ttft_ms)
        return o
      }),
      events: [...this.events.values()].slice(0, MAX_VERSIONS_PER_REPORT),
    }
    this.start = out.end
    this.stats = new Map()
    this.events = new Map()
    return out
  }

  private statsOf(ref: VersionRef): InferenceStats {
    let st = this.stats.get(key(ref))
    if (st === undefined) {
      st = {
        model: ref.model,
        version: ref.version,
        requests: 0,
        errors: 0,
        tokens_in: 0,
        tokens_out: 0,
        concurrency_max: 0,
        latency_ms: newSketch(),
      }
      this.stats.set(key(ref), st)
    }
    return st
  }
}
