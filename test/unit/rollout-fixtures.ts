/** Test builders for the rollout logic: fake peer ids, policies, health reports. No I/O. */
import { canonicalBytes, sha256Hex } from '../../protocols/encoding.ts'
import { addValue, newSketch } from '../../protocols/rollout/sketch.ts'
import type { HealthReport, QualityFigure, RolloutPolicy } from '../../protocols/schemas/index.ts'

export const T0 = Date.UTC(2026, 0, 1)
export const MIN = 60_000
export const FLEET = 'test-fleet'
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** A syntactically valid, deterministic peer id for device number n. */
export function peer(n: number): string {
  let x = BigInt(n) * 7919n + 104729n
  let s = ''
  for (let i = 0; i < 44; i++) {
    s += B58[Number(x % 58n)]
    x = x / 58n + BigInt(i * 31 + n)
  }
  return `12D3KooW${s}`
}

export function policy(over: Partial<RolloutPolicy> = {}): RolloutPolicy {
  return {
    stages: [
      { name: 'pilot', percent: 0, min_devices: 0, tags: ['pilot'], window_ms: 10 * MIN },
      { name: 'canary', percent: 20, min_devices: 1, tags: [], window_ms: 10 * MIN },
      { name: 'full', percent: 100, min_devices: 0, tags: [], window_ms: 0 },
    ],
    gates: {
      latency_p95_ms: { max: 800, max_regression_pct: 20 },
      error_rate: { max: 0.05 },
      restarts: { max: 3, per_ms: 5 * MIN },
      ooms: { max: 0 },
      min_reports: 1,
      // these histories space reports minutes apart; freshness has its own test
      vote_max_age_ms: 24 * 60 * MIN,
    },
    exclude_tags: ['low-ram'],
    inconclusive: 'hold',
    prestage: true,
    ...over,
  }
}

export interface ReportSpec {
  device: string
  seq: number
  start: number
  end: number
  active: string
  model?: string
  /** Latency samples of the active version. */
  latencies?: number[]
  requests?: number
  errors?: number
  restarts?: number
  ooms?: number
  load_failures?: number
  rollbacks?: number
  tags?: string[]
  /** Quality probe figures carried by the report. */
  quality?: QualityFigure[]
}

/** A health report of one device for model `m` (default `m`), plus its digest. */
export function report(spec: ReportSpec): { report: HealthReport; digest: string } {
  const model = spec.model ?? 'm'
  let sk = newSketch()
  for (const v of spec.latencies ?? []) sk = addValue(sk, v)
  const requests = spec.requests ?? spec.latencies?.length ?? 0
  const r: HealthReport = {
    type: 'HealthReport',
    v: 1,
    fleet: FLEET,
    device: spec.device,
    seq: spec.seq,
    window: { start: spec.start, end: spec.end },
    meta: { device_type: 'test', tags: spec.tags ?? [], runtime_version: '3.21.1', uptime_s: 100 },
    active: [{ model, version: spec.active }],
    hardware: { cpu_pct: 10, ram_pct: 20, ram_total_mb: 4096 },
    inference: [
      {
        model,
        version: spec.active,
        requests,
        errors: spec.errors ?? 0,
        tokens_in: 0,
        tokens_out: 0,
        concurrency_max: 1,
        latency_ms: sk,
      },
    ],
    events: [
      {
        model,
        version: spec.active,
        counts: {
          restarts: spec.restarts ?? 0,
          ooms: spec.ooms ?? 0,
          load_failures: spec.load_failures ?? 0,
          probe_failures: 0,
          rollbacks: spec.rollbacks ?? 0,
        },
      },
    ],
    ...(spec.quality ? { quality: spec.quality } : {}),
  }
  return { report: r, digest: sha256Hex(canonicalBytes(r)) }
}

/** n latency samples around `ms`. */
export function lat(ms: number, n = 20): number[] {
  return Array.from({ length: n }, (_, i) => ms * (0.9 + (0.2 * i) / n))
}
