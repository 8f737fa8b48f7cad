/**
 * QualityProber: runs the quality probes of releases (protocols/schemas/probes.ts) on the version
 * the device serves, when it is idle, and keeps the figures of each complete pass for the health
 * reports (which sign them).
 *
 * How it works:
 * - A timer ticks at most every `intervalMs`. On a tick it needs the supervisor `ready`, a model
 *   with a version, no request running or queued, and none for `idleMs`; otherwise it waits.
 * - The sets to run on (model, version) come from `probeSets` (the release's own set and those of
 *   newer releases of the model: run on this version they are the baseline those releases'
 *   quality gate compares with). The first set without a complete pass for this version is
 *   worked on, ONE probe per tick, scored through the supervisor's probe sequence.
 * - A user request (a `queue` event with work) aborts the running probe; it is retried on a later
 *   tick. After a probe of d ms the next tick waits max(intervalMs, d × (100/cpuSharePct − 1)).
 * - A pass is dropped when the served model changes under it. Once a set's pass is complete its
 *   figures stand (greedy scoring is deterministic: a build gives the same answer every time).
 * - Faults (a probe that errors) are counted and the loop goes on; nothing here throws out.
 */
import type { ProbeSet, QualityFigure } from '../../protocols/schemas/index.ts'
import type { ScoreResult, ScoreSpec } from '../inference/ipc.ts'
import type { SupervisorEvents } from '../inference/types.ts'
import type { Logger } from '../logger.ts'
import * as C from './constants.ts'

/** The part of the inference supervisor the prober uses. */
export interface ProberSupervisor {
  readonly state: string
  readonly model: { name: string; version: string | undefined; path: string } | undefined
  status(): { active: number; waiting: number }
  score(spec: ScoreSpec, signal?: AbortSignal): Promise<ScoreResult>
  on(event: 'queue', fn: (...args: SupervisorEvents['queue']) => void): unknown
  off(event: 'queue', fn: (...args: SupervisorEvents['queue']) => void): unknown
}

/** A probe set with its digest (`provenance.validation_dataset.digest`). */
export interface DigestedProbeSet {
  digest: string
  set: ProbeSet
}

/** Timers (a fake clock in tests). */
export interface ProberTimers {
  now(): number
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** What the prober uses. */
export interface QualityProberComponents {
  supervisor: ProberSupervisor
  /** Probe sets to run on this model version, first first (at most QUALITY_MAX_SETS are run). */
  probeSets(model: string, version: string): DigestedProbeSet[]
  logger: Logger
  timers?: ProberTimers
}

/** Options (defaults in constants.ts). */
export interface QualityProberInit {
  /** Run probes at all (default true). */
  enabled?: boolean
  intervalMs?: number
  idleMs?: number
  cpuSharePct?: number
}

/** Counters for /status and tests. */
export interface ProberCounters {
  probes: number
  preempted: number
  errors: number
  passes: number
}

interface Pass {
  key: string
  path: string
  next: number
  figure: QualityFigure
}

const realTimers: ProberTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref()
    return t
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
}

/** Runs quality probes when idle. start()/stop() are idempotent. */
export class QualityProber {
  readonly counters: ProberCounters = { probes: 0, preempted: 0, errors: 0, passes: 0 }
  private readonly c: QualityProberComponents
  private readonly t: ProberTimers
  private readonly intervalMs: number
  private readonly idleMs: number
  private readonly share: number
  private readonly enabled: boolean
  private readonly done = new Map<string, QualityFigure>()
  private pass: Pass | undefined
  private timer: unknown
  private running = false
  private busyAt = Number.NEGATIVE_INFINITY
  private inflight: AbortController | undefined
  private readonly onQueue = (q: SupervisorEvents['queue'][0]): void => {
    if (q.active + q.waiting === 0) return
    this.busyAt = this.t.now()
    if (this.inflight !== undefined) {
      this.inflight.abort()
      this.counters.preempted++
    }
  }

  constructor(components: QualityProberComponents, init: QualityProberInit) {
    this.c = components
    this.t = components.timers ?? realTimers
    this.enabled = init.enabled ?? true
    this.intervalMs = init.intervalMs ?? C.QUALITY_PROBE_INTERVAL_MS
    this.idleMs = init.idleMs ?? C.QUALITY_IDLE_MS
    this.share = Math.min(100, Math.max(1, init.cpuSharePct ?? C.QUALITY_CPU_SHARE_PCT))
  }

  start(): void {
    if (this.running || !this.enabled) return
    this.running = true
    this.c.supervisor.on('queue', this.onQueue)
    this.schedule(this.intervalMs)
  }

  stop(): void {
    if (!this.running) return
    this.running = false
    this.c.supervisor.off('queue', this.onQueue)
    this.t.clearTimeout(this.timer)
    this.inflight?.abort()
  }

  /** Figures of every complete pass (newest last), for the health reports. */
  figures(): QualityFigure[] {
    return [...this.done.values()].slice(-C.QUALITY_MAX_FIGURES)
  }

  private schedule(ms: number): void {
    if (!this.running) return
    this.timer = this.t.setTimeout(() => void this.tick(), ms)
  }

  /** One tick: at most one probe. Never throws. */
  private async tick(): Promise<void> {
    let wait = this.intervalMs
    try {
      wait = await this.step()
    } catch (err) {
      this.counters.errors++
      this.c.logger.warn({ err: (err as Error).message }, 'quality probe failed')
    }
    this.schedule(wait)
  }

  private idle(): boolean {
    const sup = this.c.supervisor
    const s = sup.status()
    if (s.active + s.waiting > 0) this.busyAt = this.t.now()
    return sup.state === 'ready' && s.active + s.waiting === 0 && this.t.now() - this.busyAt >= this.idleMs
  }

  /** Runs one probe if there is one to run and the device is idle; returns the wait before the next tick. */
  private async step(): Promise<number> {
    const sup = this.c.supervisor
    const m = sup.model
    if (m?.version === undefined || !this.idle()) return this.intervalMs
    const pass = this.currentPass(m.name, m.version, m.path)
    if (pass === undefined) return this.intervalMs
    const set = this.c.probeSets(m.name, m.version).find((s) => s.digest === pass.figure.probe_set)
    if (set === undefined) {
      this.pass = undefined // its release is gone
      return this.intervalMs
    }
    const probe = set.set.probes[pass.next]
    const abort = new AbortController()
    this.inflight = abort
    const t0 = this.t.now()
    let score: ScoreResult
    try {
      score = await sup.score(
        {
          prompt: probe.prompt,
          reference: probe.reference,
          referenceTokens: probe.reference_tokens,
          maxTokens: set.set.generation.max_tokens,
        },
        abort.signal,
      )
    } catch (err) {
      if (abort.signal.aborted) return this.intervalMs // preempted by a request (counted): retried later
      throw err
    } finally {
      this.inflight = undefined
    }
    const took = this.t.now() - t0
    this.counters.probes++
    if (sup.model?.path !== pass.path) {
      this.pass = undefined // the model changed under the pass
      return this.intervalMs
    }
    const f = pass.figure
    f.probes++
    f.tokens += score.tokens
    f.agreed += score.agreed
    f.nll += score.nll
    pass.next++
    if (pass.next >= set.set.probes.length) {
      this.done.delete(pass.key)
      this.done.set(pass.key, { ...f, nll: Math.round(f.nll * 1e6) / 1e6 })
      while (this.done.size > C.QUALITY_MAX_FIGURES) this.done.delete(this.done.keys().next().value!)
      this.pass = undefined
      this.counters.passes++
      this.c.logger.info(
        { model: f.model, version: f.version, probeSet: f.probe_set, tokens: f.tokens, agreed: f.agreed },
        'quality probes done',
      )
    }
    return Math.max(this.intervalMs, Math.ceil(took * (100 / this.share - 1)))
  }

  /** The pass being worked on, or the next set on this version without a complete pass. */
  private currentPass(model: string, version: string, path: string): Pass | undefined {
    const keyOf = (digest: string) => `${model}@${version}#${digest}`
    if (this.pass?.path === path && this.pass.figure.version === version) return this.pass
    const next = this.c
      .probeSets(model, version)
      .slice(0, C.QUALITY_MAX_SETS)
      .find((s) => !this.done.has(keyOf(s.digest)))
    if (next === undefined) return undefined
    this.pass = {
      key: keyOf(next.digest),
      path,
      next: 0,
      figure: { model, version, probe_set: next.digest, probes: 0, tokens: 0, agreed: 0, nll: 0 },
    }
    return this.pass
  }
}
