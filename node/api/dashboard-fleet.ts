/**
 * The fleet's devices as the dashboard shows them: one row per device this node has heard of
 * (enrollment, revocation or health report), with the figures of its latest signed health report.
 * Pure over the message store (no clock read: `now` comes in).
 */
import { quantile } from '../../protocols/rollout/sketch.ts'
import type { HealthReport } from '../../protocols/schemas/index.ts'
import type { MessageStore } from '../mesh/message-store.ts'

/** Inference figures of one model version over a device's latest report window. */
export interface DashboardInference {
  model: string
  version: string
  requests: number
  errors: number
  /** p95 latency in ms from the report's sketch, null without requests. */
  p95_ms: number | null
}

/** One device row. */
export interface DashboardDevice {
  id: string
  /** Tags of the enrollment in force (what cohorts use); empty for a pending device. */
  tags: string[]
  /** Tags the device declares itself (from its hello; never used for cohorts), null when unknown. */
  declared_tags: string[] | null
  /** `enrolled`, `pending` (holds the join secret, nobody enrolled it) or `revoked`. */
  membership: 'enrolled' | 'pending' | 'revoked'
  enrolled: boolean
  revoked: boolean
  /** `model@version` per active model, from the latest report. */
  active: string[]
  /** `model@version` staged on the device, from the latest report (null: the report does not say). */
  staged: string[] | null
  /** ms since epoch: latest report window end, else the enrollment time. */
  last_seen: number | null
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
export type DashboardSource = Pick<MessageStore, 'list' | 'forDevice' | 'enrollmentOf' | 'revocationOf'>

function latestReport(store: DashboardSource, id: string): HealthReport | undefined {
  let best: HealthReport | undefined
  for (const m of store.forDevice(id)) {
    if (m.type !== 'HealthReport') continue
    const h = m.message as HealthReport
    if (h.device === id && (best === undefined || h.window.end > best.window.end)) best = h
  }
  return best
}

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

/**
 * Every device this node knows, sorted by id; `self` is always listed, and so are the peers that
 * said hello in an anti-entropy round (`declared`: the tags they declare), pending or not.
 */
export function dashboardDevices(
  store: DashboardSource,
  self: string,
  now: number,
  declared: ReadonlyMap<string, { tags: string[] }> = new Map(),
): DashboardDevice[] {
  const ids = new Set<string>([self, ...declared.keys()])
  for (const t of ['DeviceEnrollment', 'Revocation', 'HealthReport', 'InviteClaim'] as const) {
    for (const m of store.list(t)) ids.add(m.message.device)
  }
  return [...ids].sort().map((id) => {
    const enr = store.enrollmentOf(id, now)
    const h = latestReport(store, id)
    const revoked = store.revocationOf(id) !== undefined
    return {
      id,
      // a pending device's own word is never its tags: shown as declared only
      tags: enr?.tags ?? [],
      declared_tags: declared.get(id)?.tags ?? null,
      membership: revoked ? 'revoked' : enr !== undefined ? 'enrolled' : 'pending',
      enrolled: enr !== undefined,
      revoked,
      active: h?.active.map((a) => `${a.model}@${a.version}`) ?? [],
      staged: h?.staged?.map((a) => `${a.model}@${a.version}`) ?? null,
      last_seen: h?.window.end ?? enr?.issued_at ?? null,
      report: h === undefined ? null : summarize(h),
    }
  })
}
