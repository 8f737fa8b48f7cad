/**
 * The fleet's devices as one view, from the verified messages: what `/status`, the dashboard,
 * `GET /devices` (`llmesh device list`) and the rollout planner all show of "a device of the fleet".
 *
 * How it works. A device is listed when any message names it (an enrollment, a revocation, a
 * health report) or when it said hello in an anti-entropy round. Its effective enrollment is the
 * enrollment with the highest `issued_at` (ties: the lower tag list), expired or not: the same
 * rule the rollout's cohorts use (`activeDevices`), so the tags shown are the tags cohorts use.
 * Membership: `revoked` (final) over `expired` over `enrolled`; `pending` when the caller says the
 * device asked to join and awaits the operator; else `unenrolled`. Cohort `tags` are the effective
 * enrollment's while the device is enrolled, else none. The tags a device declares itself (its
 * hello, else its latest health report) are NEVER cohort tags: they are shown as `declared_tags`.
 * Pure: no store, no clock (`now` comes in).
 */
import { siteOf } from '../fleet-report.ts'
import { SEED_TAG } from '../rollout/constants.ts'
import type { DeviceEnrollment, Revocation } from '../schemas/index.ts'

/** Where a device stands with the fleet. */
export type DeviceMembership = 'enrolled' | 'pending' | 'expired' | 'revoked' | 'unenrolled'

/** Capabilities as an enrollment carries them. */
export type DeviceCapabilities = DeviceEnrollment['capabilities']

/** A stored enrollment with its digest. */
export interface EnrollmentRecord {
  message: DeviceEnrollment
  digest: string
}

/** A device's self-description from its latest anti-entropy round. */
export interface DeviceHello {
  role: 'node' | 'seed'
  /** The name it declares (`--name`). */
  name?: string
  tags: string[]
  capabilities: DeviceCapabilities
}

/** The part of a health report the view reads. */
export interface ViewReport {
  device: string
  window: { end: number }
  active: ReadonlyArray<{ model: string; version: string }>
  staged?: ReadonlyArray<{ model: string; version: string }>
  meta?: { tags: readonly string[] }
  agent?: { version: string; stuck?: string }
}

/** One device of the fleet. */
export interface FleetDevice {
  id: string
  /** A name for people: the enrollment's (the invite or approval that enrolled it), else the one it declares; null when none. */
  name: string | null
  membership: DeviceMembership
  /** Cohort tags: the effective enrollment's while enrolled, else none. Never the declared ones. */
  tags: string[]
  /** Tags the device declares itself (hello, else latest health report); null when unknown. */
  declared_tags: string[] | null
  /**
   * Its site (`--site`, the tag `site:<name>`): from its cohort tags, else from the tags it
   * declares (its hello, else its latest signed health report); null when none names one.
   */
  site: string | null
  /** Whether it holds a valid (unexpired, unrevoked) enrollment. */
  enrolled: boolean
  /** Its revocation, null when not revoked. */
  revoked: { reason: string; issued_at: number } | null
  role: 'node' | 'seed' | null
  capabilities: DeviceCapabilities | null
  enrolled_at: number | null
  expires_at: number | null
  /** `model@version` per active model, from its latest health report. */
  active: string[]
  /** `model@version` staged, from its latest health report (null: the report does not say). */
  staged: string[] | null
  /** The agent (llmesh) version its latest health report names; null when it does not say. */
  agent_version: string | null
  /**
   * Why its agent is stuck, from its latest health report (`agent.stuck`: the fleet refuses the
   * agent version it runs and it has none it may go back to); null when it is not (or does not say).
   */
  agent_stuck: string | null
  /** End of the window of its latest health report (ms since epoch). */
  last_report: number | null
  /** The latest report's window end, else the enrollment time. */
  last_seen: number | null
}

/** What the view reads. */
export interface FleetViewInput {
  enrollments: readonly EnrollmentRecord[]
  revocations: readonly Revocation[]
  reports: readonly ViewReport[]
  /** Hellos of the latest anti-entropy rounds (none when the mesh is not running). */
  hellos?: ReadonlyMap<string, DeviceHello>
  /** Devices waiting for the operator's approval to join (the invites flow). */
  pending?: ReadonlySet<string>
  /** Always listed (this node). */
  self?: string
  now: number
}

/** The effective (highest `issued_at`) enrollment among `records`, expired or not. Ties: lower tag list. */
export function latestEnrollment<R extends { message: DeviceEnrollment }>(records: Iterable<R>): R | undefined {
  let best: R | undefined
  for (const r of records) {
    const e = r.message
    const b = best?.message
    if (b === undefined || e.issued_at > b.issued_at || (e.issued_at === b.issued_at && e.tags.join() < b.tags.join()))
      best = r
  }
  return best
}

/** Each device's latest health report (by window end). */
export function latestReports<R extends { device: string; window: { end: number } }>(
  reports: Iterable<R>,
): Map<string, R> {
  const latest = new Map<string, R>()
  for (const h of reports) {
    const cur = latest.get(h.device)
    if (cur === undefined || h.window.end > cur.window.end) latest.set(h.device, h)
  }
  return latest
}

const refs = (xs: ReadonlyArray<{ model: string; version: string }>) => xs.map((a) => `${a.model}@${a.version}`)

/** Every device the fleet's messages (and hellos) name, sorted by id. */
export function fleetDevices(input: FleetViewInput): FleetDevice[] {
  const hellos = input.hellos ?? new Map<string, DeviceHello>()
  const ids = new Set<string>(hellos.keys())
  if (input.self !== undefined) ids.add(input.self)
  for (const id of input.pending ?? []) ids.add(id)
  const enrollments = new Map<string, EnrollmentRecord[]>()
  for (const r of input.enrollments) {
    ids.add(r.message.device)
    const list = enrollments.get(r.message.device)
    if (list === undefined) enrollments.set(r.message.device, [r])
    else list.push(r)
  }
  const revocations = new Map<string, Revocation>()
  for (const r of input.revocations) {
    ids.add(r.device)
    const had = revocations.get(r.device)
    if (had === undefined || r.issued_at < had.issued_at) revocations.set(r.device, r)
  }
  const latest = latestReports(input.reports)
  for (const id of latest.keys()) ids.add(id)
  return [...ids].sort().map((id) => {
    const e = latestEnrollment(enrollments.get(id) ?? [])?.message
    const rev = revocations.get(id)
    const hello = hellos.get(id)
    const h = latest.get(id)
    const expired = e?.expires_at !== undefined && e.expires_at <= input.now
    const membership: DeviceMembership =
      rev !== undefined
        ? 'revoked'
        : e !== undefined
          ? expired
            ? 'expired'
            : 'enrolled'
          : input.pending?.has(id)
            ? 'pending'
            : 'unenrolled'
    const declared = hello?.tags ?? h?.meta?.tags
    return {
      id,
      name: e?.name ?? hello?.name ?? null,
      membership,
      tags: e !== undefined && membership === 'enrolled' ? [...e.tags] : [],
      declared_tags: declared === undefined ? null : [...declared],
      site: siteOf(e?.tags) ?? siteOf(declared),
      enrolled: membership === 'enrolled',
      revoked: rev === undefined ? null : { reason: rev.reason, issued_at: rev.issued_at },
      role: hello?.role ?? (e?.tags.includes(SEED_TAG) ? 'seed' : null),
      capabilities: e?.capabilities ?? hello?.capabilities ?? null,
      enrolled_at: e?.issued_at ?? null,
      expires_at: e?.expires_at ?? null,
      active: h === undefined ? [] : refs(h.active),
      staged: h?.staged === undefined ? null : refs(h.staged),
      agent_version: h?.agent?.version ?? null,
      agent_stuck: h?.agent?.stuck ?? null,
      last_report: h?.window.end ?? null,
      last_seen: h?.window.end ?? e?.issued_at ?? null,
    }
  })
}
