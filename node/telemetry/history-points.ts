/**
 * What FleetHistory's queries answer: the points of a release's, a device's and the fleet's
 * history, made from the buckets of a series' fine or coarse ring (means from sums and counts,
 * fleet latency quantiles from the merged sketches), rounded to two decimals.
 */
import { quantile } from '../../protocols/rollout/sketch.ts'
import type { Sketch } from '../../protocols/schemas/index.ts'
import type { DeviceSeries, ReleaseSeries } from './history-series.ts'

/** One point of a release's history. */
export interface ReleasePoint {
  t: number
  requests: number
  errors: number
  /** errors / requests, null without requests. */
  error_rate: number | null
  p50_ms: number | null
  p95_ms: number | null
  p99_ms: number | null
  tokens_in: number
  tokens_out: number
  /** Devices whose reports in the bucket had this version active. */
  devices: number
  restarts: number
  ooms: number
  /** Load and probe failures and local rollbacks. */
  failures: number
}

/** One point of a device's history. */
export interface DevicePoint {
  t: number
  reports: number
  requests: number
  errors: number
  cpu_pct: number | null
  ram_pct: number | null
  temp_c: number | null
}

/** A range answer: the bucket width and the points with data, oldest first. */
export interface HistoryRange<P> {
  step_ms: number
  points: P[]
}

/** One point of the fleet's history: devices reporting in a coarse bucket against devices known by then. */
export interface FleetPoint {
  t: number
  known: number
  reporting: number
  offline_ratio: number
}

const round = (x: number | null): number | null => (x === null ? null : Math.round(x * 100) / 100)

/** A release's points in [from, to]: fine buckets when the range is within the fine ring, else coarse. */
export function releasePoints(
  s: ReleaseSeries,
  from: number,
  to: number,
  now: () => number,
): HistoryRange<ReleasePoint> {
  const ring = from >= now() - s.fine.stepMs * s.fine.slots ? 'fine' : 'coarse'
  const step = s[ring].stepMs
  const points = s[ring].range(from, to, now()).map((p): ReleasePoint => {
    const sk: Sketch | undefined = s.sketches[ring].get(p.t / step)
    return {
      t: p.t,
      requests: p.requests,
      errors: p.errors,
      error_rate: p.requests > 0 ? round(p.errors / p.requests) : null,
      p50_ms: sk === undefined ? null : round(quantile(sk, 0.5)),
      p95_ms: sk === undefined ? null : round(quantile(sk, 0.95)),
      p99_ms: sk === undefined ? null : round(quantile(sk, 0.99)),
      tokens_in: p.tokens_in,
      tokens_out: p.tokens_out,
      devices: p.devices,
      restarts: p.restarts,
      ooms: p.ooms,
      failures: p.failures,
    }
  })
  return { step_ms: step, points }
}

/** A device's points in [from, to]: fine buckets when the range is within the fine ring, else coarse. */
export function devicePoints(s: DeviceSeries, from: number, to: number, now: () => number): HistoryRange<DevicePoint> {
  const ring = from >= now() - s.fine.stepMs * s.fine.slots ? 'fine' : 'coarse'
  const points = s[ring].range(from, to, now()).map(
    (p): DevicePoint => ({
      t: p.t,
      reports: p.reports,
      requests: p.requests,
      errors: p.errors,
      cpu_pct: p.reports > 0 ? round(p.cpu_sum / p.reports) : null,
      ram_pct: p.reports > 0 ? round(p.ram_sum / p.reports) : null,
      temp_c: p.temp_n > 0 ? round(p.temp_sum / p.temp_n) : null,
    }),
  )
  return { step_ms: s[ring].stepMs, points }
}

/** Devices reporting per coarse bucket in [from, to] against devices known by then (offline share). */
export function fleetPoints(
  devices: Iterable<DeviceSeries>,
  from: number,
  to: number,
  now: () => number,
): HistoryRange<FleetPoint> {
  const reporting = new Map<number, number>()
  const first: number[] = []
  let step = 0
  for (const s of devices) {
    step = s.coarse.stepMs
    const pts = s.coarse.range(0, Number.MAX_SAFE_INTEGER, now())
    if (pts.length > 0) first.push(pts[0].t)
    for (const p of pts) if (p.t + step > from && p.t <= to) reporting.set(p.t, (reporting.get(p.t) ?? 0) + 1)
  }
  const points = [...reporting.keys()]
    .sort((a, b) => a - b)
    .map((t) => {
      const known = first.filter((f) => f <= t).length
      const n = reporting.get(t) ?? 0
      return { t, known, reporting: n, offline_ratio: known > 0 ? round(1 - n / known)! : 0 }
    })
  return { step_ms: step, points }
}
