/**
 * The fleet's devices as the dashboard shows them: the fleet device view (one row per device this
 * node has heard of), with the figures of its latest signed health report.
 * Pure over the message store (no clock read: `now` comes in).
 */
import { type FleetDevice, latestReports } from '../../protocols/fleet/device-view.ts'
import { quantile } from '../../protocols/rollout/sketch.ts'
import type { HealthReport } from '../../protocols/schemas/index.ts'
import { type FleetViewSource, type StoreFleetViewOptions, storeFleetView } from '../fleet-view.ts'

/** Inference figures of one model version over a device's latest report window. */
export interface DashboardInference {
  model: string
  version: string
  requests: number
  errors: number
  /** p95 latency in ms from the report's sketch, null without requests. */
  p95_ms: number | null
}

/** This node, as the dashboard's header shows it. */
export interface DashboardNode {
  id: string
  role: string
  fleet: string
  /** Whether this node holds the operator key (the page's buttons sign commands). */
  operator: boolean
  report_interval_ms: number
}

/** The JSON of `GET /dashboard/fleet`. */
export interface DashboardFleet {
  node: DashboardNode
  now: number
  devices: DashboardDevice[]
}

/** One published release in `GET /releases` (sent by the seed's release routes). */
export interface PublishedRelease {
  model: string
  version: string
  seq: number
  size: number
  sha256: string
  chunks: number
  created_at: number
  expires_at: number
  digest: string
  downgrade_from?: string
}

/** One device row: the fleet device view and the figures of its latest signed health report. */
export type DashboardDevice = FleetDevice & {
  /** Figures of the latest report, null when the device never reported. */
  report: {
    seq: number
    window_ms: number
    device_type: string
    runtime_version: string
    uptime_s: number
    cpu_pct: number
    ram_pct: number
    temp_c: number | null
    inference: DashboardInference[]
    /** Health events summed over the report's models. */
    events: { restarts: number; ooms: number; load_failures: number; probe_failures: number; rollbacks: number }
  } | null
}

/** The store's part the summary reads. */
export type DashboardSource = FleetViewSource

function summarize(h: HealthReport): NonNullable<DashboardDevice['report']> {
  const events = { restarts: 0, ooms: 0, load_failures: 0, probe_failures: 0, rollbacks: 0 }
  for (const e of h.events) for (const k of Object.keys(events) as Array<keyof typeof events>) events[k] += e.counts[k]
  return {
    seq: h.seq,
    window_ms: h.window.end - h.window.start,
    device_type: h.meta.device_type,
    runtime_version: h.meta.runtime_version,
    uptime_s: h.meta.uptime_s,
    cpu_pct: h.hardware.cpu_pct,
    ram_pct: h.hardware.ram_pct,
    temp_c: h.hardware.temp_c ?? null,
    inference: h.inference.map((i) => ({
      model: i.model,
      version: i.version,
      requests: i.requests,
      errors: i.errors,
      p95_ms: quantile(i.latency_ms, 0.95),
    })),
    events,
  }
}

/** Every device this node knows (the fleet device view), sorted by id; `self` is always listed. */
export function dashboardDevices(
  store: DashboardSource,
  self: string,
  now: number,
  mesh?: StoreFleetViewOptions['mesh'],
): DashboardDevice[] {
  const latest = latestReports(store.list('HealthReport').map((m) => m.message))
  return storeFleetView(store, { mesh, self, now }).map((d) => {
    const h = latest.get(d.id)
    return { ...d, report: h === undefined ? null : summarize(h) }
  })
}
