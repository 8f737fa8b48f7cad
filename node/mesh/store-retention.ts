/**
 * Retention rules of the message store (docs/protocol.md, "Message retention"): what a decision
 * can still use is kept, the rest is dropped, so the store's size follows fleet size × live
 * releases, not uptime.
 *
 * How it works (a pure pass over the store's index, run by `MessageStore.prune` and, for the
 * message at hand, by `put`):
 * - A release is *finished* when an operator `abort` command names it or a release of the same
 *   model with a higher sequence exists. The others are *live*.
 * - The *report horizon* is twice the longest stage window of any live release (the window a
 *   verdict judges, and as long again for a node to check that verdict's evidence) plus its vote
 *   age, at least REPORT_HORIZON_MIN_MS, at most the retention.
 * - Health reports: none older than the retention (`report-age`); of each device, the newest
 *   REPORTS_KEPT_NEWEST whatever their age, and every report within the horizon
 *   (`report-horizon` drops the others). A report is dated by the earlier of its window's end and
 *   its arrival (a sender cannot keep one by dating it ahead).
 * - Verdicts of a finished release: per (stage, outcome) the FINISHED_VERDICTS_KEPT earliest by
 *   (decided_at, id), the ones that explain how it ended (`finished-verdict`).
 * - Commands of a finished release: its abort and promote commands, and the last pause or resume
 *   (`finished-command`).
 * - Enrollments: a device's enrollment is dropped once a later one (issued after it, expiring no
 *   earlier) exists (`superseded-enrollment`). Revocations, trust roots and releases are kept.
 */
import { MAX_SIZE } from '../../protocols/constants.ts'
import { VOTE_MAX_AGE_MS } from '../../protocols/rollout/constants.ts'
import type {
  DeviceEnrollment,
  HealthReport,
  OperatorCommand,
  ReleaseManifest,
  Verdict,
} from '../../protocols/schemas/index.ts'
import { type MessageIndex, reportTime } from './message-index.ts'
import type { StoredMessage } from './types.ts'

/** The knobs of the retention rules. */
export interface RetentionRules {
  /** No health report older than this is kept. */
  retentionMs: number
  /** The report horizon is at least this. */
  minHorizonMs: number
  /** Newest reports of a device kept whatever their age (within the retention). */
  keepNewest: number
  /** Verdicts kept per (stage, outcome) of a finished release. */
  finishedVerdictsKept: number
}

/** Why retention dropped a message (a label of `llmesh_store_retention_dropped_total`). */
export type DropRule =
  | 'report-age'
  | 'report-horizon'
  | 'finished-verdict'
  | 'finished-command'
  | 'superseded-enrollment'

/** Every rule, for metrics. */
export const DROP_RULES: readonly DropRule[] = [
  'report-age',
  'report-horizon',
  'finished-verdict',
  'finished-command',
  'superseded-enrollment',
]

/** The name of a release in retention's sets. */
export function releaseKey(x: { model: string; version: string }): string {
  return `${x.model}@${x.version}`
}

function all<M extends StoredMessage['message']>(ix: MessageIndex, type: M['type']): Array<StoredMessage<M>> {
  return ix.collect(ix.byType.get(type)) as Array<StoredMessage<M>>
}

/** Releases that are over: aborted by an operator command, or superseded by a higher sequence. */
export function finishedReleases(ix: MessageIndex): Set<string> {
  const releases = all<ReleaseManifest>(ix, 'ReleaseManifest')
  const top = new Map<string, number>()
  for (const { message: r } of releases) top.set(r.model, Math.max(top.get(r.model) ?? 0, r.seq))
  const out = new Set<string>()
  for (const { message: r } of releases) if (r.seq < (top.get(r.model) ?? 0)) out.add(releaseKey(r))
  for (const { message: c } of all<OperatorCommand>(ix, 'OperatorCommand'))
    if (c.action === 'abort') out.add(releaseKey(c))
  return out
}

/** How far back a live release's decisions and their checks can look (see the header). */
export function reportHorizon(ix: MessageIndex, finished: ReadonlySet<string>, rules: RetentionRules): number {
  let h = rules.minHorizonMs
  for (const { message: r } of all<ReleaseManifest>(ix, 'ReleaseManifest')) {
    if (finished.has(releaseKey(r))) continue
    const window = Math.max(0, ...r.policy.stages.map((s) => s.window_ms))
    h = Math.max(h, 2 * window + (r.policy.gates.vote_max_age_ms ?? VOTE_MAX_AGE_MS))
  }
  return Math.min(h, rules.retentionMs)
}

/** Whether a health report is dropped, given the seqs of its device's newer reports held. */
export function reportRule(
  m: StoredMessage,
  newer: number,
  now: number,
  horizon: number,
  rules: RetentionRules,
): DropRule | undefined {
  const t = reportTime(m)
  if (t < now - rules.retentionMs) return 'report-age'
  if (t < now - horizon && newer >= rules.keepNewest) return 'report-horizon'
  return undefined
}

/** How many of this device's held reports have a higher seq than `seq`. */
export function newerReports(ix: MessageIndex, device: string, seq: number): number {
  let n = 0
  for (const m of ix.collect(ix.byDevice.get(device)))
    if (m.type === 'HealthReport' && (m.message as HealthReport).seq > seq) n++
  return n
}

/** Every message the rules drop now, with the rule that drops it. */
export function retentionDrops(ix: MessageIndex, now: number, rules: RetentionRules): Map<string, DropRule> {
  const out = new Map<string, DropRule>()
  const finished = finishedReleases(ix)
  const horizon = reportHorizon(ix, finished, rules)
  // reports: per device, newest first by seq
  const byDevice = new Map<string, Array<StoredMessage<HealthReport>>>()
  for (const m of all<HealthReport>(ix, 'HealthReport')) {
    const list = byDevice.get(m.message.device)
    if (list === undefined) byDevice.set(m.message.device, [m])
    else list.push(m)
  }
  for (const list of byDevice.values()) {
    list.sort((a, b) => b.message.seq - a.message.seq || cmp(a.digest, b.digest))
    list.forEach((m, i) => {
      const rule = reportRule(m, i, now, horizon, rules)
      if (rule !== undefined) out.set(m.digest, rule)
    })
  }
  // verdicts of finished releases: the earliest per (release, stage, outcome)
  const groups = new Map<string, Array<StoredMessage<Verdict>>>()
  for (const m of all<Verdict>(ix, 'Verdict')) {
    const v = m.message
    if (!finished.has(releaseKey(v))) continue
    const k = `${releaseKey(v)}\0${v.stage}\0${v.outcome}`
    const g = groups.get(k)
    if (g === undefined) groups.set(k, [m])
    else g.push(m)
  }
  for (const g of groups.values()) {
    g.sort((a, b) => a.message.decided_at - b.message.decided_at || cmp(a.digest, b.digest))
    for (const m of g.slice(rules.finishedVerdictsKept)) out.set(m.digest, 'finished-verdict')
  }
  // commands of finished releases: abort and promote, and the last pause/resume
  const toggles = new Map<string, Array<StoredMessage<OperatorCommand>>>()
  for (const m of all<OperatorCommand>(ix, 'OperatorCommand')) {
    const c = m.message
    if (!finished.has(releaseKey(c)) || c.action === 'abort' || c.action === 'promote') continue
    const g = toggles.get(releaseKey(c))
    if (g === undefined) toggles.set(releaseKey(c), [m])
    else g.push(m)
  }
  for (const g of toggles.values()) {
    g.sort((a, b) => b.message.issued_at - a.message.issued_at || cmp(b.message.id, a.message.id))
    for (const m of g.slice(1)) out.set(m.digest, 'finished-command')
  }
  for (const m of all<DeviceEnrollment>(ix, 'DeviceEnrollment'))
    if (supersededEnrollment(ix, m.message)) out.set(m.digest, 'superseded-enrollment')
  return out
}

/** Whether a later enrollment of the same device (issued after, expiring no earlier) is held. */
export function supersededEnrollment(ix: MessageIndex, e: DeviceEnrollment): boolean {
  for (const m of ix.collect(ix.adminOf.get(e.device))) {
    if (m.type !== 'DeviceEnrollment') continue
    const o = m.message as DeviceEnrollment
    if (o.issued_at <= e.issued_at) continue
    if (o.expires_at === undefined || (e.expires_at !== undefined && o.expires_at >= e.expires_at)) return true
  }
  return false
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** What the store's bound depends on (docs/protocol.md, "Message retention"). */
export interface FleetSize {
  /** Devices enrolled (or revoked) within the retention. */
  devices: number
  /** Release manifests held (every release is kept). */
  releases: number
  /** Operator commands held. */
  commands: number
  /** Trust roots held. */
  trustRoots: number
}

/**
 * Upper bound of the wire bytes a store holds: each device at most its report and verdict quotas
 * plus an enrollment and a revocation, plus what the operator signed. Whatever devices send, the
 * store stays under it (the log is about 2.4× the wire bytes, the heap about 3×).
 */
export function storeWireBound(
  f: FleetSize,
  quotas: { HealthReport: { bytes: number }; Verdict: { bytes: number } },
): number {
  const perDevice = quotas.HealthReport.bytes + quotas.Verdict.bytes + MAX_SIZE.DeviceEnrollment + MAX_SIZE.Revocation
  return (
    f.devices * perDevice +
    f.releases * MAX_SIZE.ReleaseManifest +
    f.commands * MAX_SIZE.OperatorCommand +
    f.trustRoots * MAX_SIZE.TrustRoot
  )
}
