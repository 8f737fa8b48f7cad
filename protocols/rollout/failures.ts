/**
 * Failed devices of a stage's cohort and the failure budget (pure).
 *
 * How it works:
 * - A cohort device has failed the candidate version when its counted reports show, for that
 *   version: a load failure, a probe failure or a local rollback (it could not run it); more OOM
 *   kills over the window than `gates.ooms.max`; or more restarts within some `per_ms` than
 *   `gates.restarts.max` (a crash loop). Each failed device keeps its reasons and the reports that
 *   show them: they are the evidence of an abort, so every node re-counts the failed devices.
 * - The stage fails when failed devices > budget, budget = max(max_devices, ⌊max_pct × cohort / 100⌋)
 *   of `gates.failures`; a policy without it tolerates none (its meaning before budgets existed).
 * Whatever the budget, a failing device rolls back by itself (node/rollout/activator.ts).
 */
import type { ReleaseRef } from '../schemas/common.ts'
import type { FailureBudget, Gates } from '../schemas/policy.ts'
import type { GateFigure } from '../schemas/rollout.ts'
import { FAILED_NAMED_IN_REASON } from './constants.ts'
import type { StageFailures, VerifiedReport } from './report-types.ts'

/** A cohort device that failed the candidate version, and why. */
export interface FailedDevice {
  device: string
  /** For people, e.g. `load failure`, `2 OOM kills (max 0)`, `5 restarts within 600000 ms (max 3)`. */
  reasons: string[]
  /** The reports showing the failure (by digest). */
  evidence: VerifiedReport[]
}

/** What the cohort's health events give. */
export interface CohortFailures {
  failed: FailedDevice[]
  /** Most restarts of one device within any `per_ms`, most OOM kills of one device. */
  worstRestarts: number
  worstOoms: number
  /** Devices with a load or probe failure or a local rollback. */
  broken: number
}

/** Failed devices a stage of `cohort` devices tolerates: max(max_devices, ⌊max_pct × cohort / 100⌋). */
export function failureBudget(budget: FailureBudget | undefined, cohort: number): number {
  if (budget === undefined) return 0
  return Math.max(budget.max_devices, Math.floor((budget.max_pct * cohort) / 100))
}

const same = (a: { model: string; version: string }, b: ReleaseRef) => a.model === b.model && a.version === b.version

function eventsOf(r: VerifiedReport, rel: ReleaseRef) {
  return r.report.events.find((e) => same(e, rel))?.counts
}

/** Judges each cohort device (its counted reports, sorted by seq) against the per-device gates. */
export function cohortFailures(
  devices: ReadonlyArray<{ id: string; reports: readonly VerifiedReport[] }>,
  release: ReleaseRef,
  gates: Gates,
): CohortFailures {
  const out: CohortFailures = { failed: [], worstRestarts: 0, worstOoms: 0, broken: 0 }
  for (const v of devices) {
    const withEvents = v.reports.filter((r) => eventsOf(r, release))
    const reasons: string[] = []
    const evidence = new Map<string, VerifiedReport>()
    const show = (rs: VerifiedReport[]) => {
      for (const r of rs) evidence.set(r.digest, r)
    }
    if (gates.restarts) {
      const { max, per_ms: per } = gates.restarts
      let worst = 0
      let worstSpan: VerifiedReport[] = []
      for (const r of withEvents) {
        const end = r.report.window.end
        const span = withEvents.filter((x) => x.report.window.end > end - per && x.report.window.end <= end)
        const n = span.reduce((t, x) => t + eventsOf(x, release)!.restarts, 0)
        if (n > worst) [worst, worstSpan] = [n, span]
      }
      out.worstRestarts = Math.max(out.worstRestarts, worst)
      if (worst > max) {
        reasons.push(`${worst} restarts within ${per} ms (max ${max})`)
        show(worstSpan.filter((x) => eventsOf(x, release)!.restarts > 0))
      }
    }
    const ooms = withEvents.reduce((t, r) => t + eventsOf(r, release)!.ooms, 0)
    out.worstOoms = Math.max(out.worstOoms, ooms)
    if (gates.ooms && ooms > gates.ooms.max) {
      reasons.push(`${ooms} OOM kills (max ${gates.ooms.max})`)
      show(withEvents.filter((r) => eventsOf(r, release)!.ooms > 0))
    }
    const kinds = [
      ['load_failures', 'load failure'],
      ['probe_failures', 'probe failure'],
      ['rollbacks', 'local rollback'],
    ] as const
    let broken = false
    for (const [k, label] of kinds) {
      const rs = withEvents.filter((r) => eventsOf(r, release)![k] > 0)
      if (rs.length === 0) continue
      broken = true
      reasons.push(label)
      show(rs)
    }
    if (broken) out.broken++
    if (reasons.length > 0) out.failed.push({ device: v.id, reasons, evidence: [...evidence.values()] })
  }
  return out
}

/**
 * The figures of the cohort's health (per device: the worst restarts and OOMs, devices that could
 * not run the version; per stage: `failed_devices` against the budget), the failures for status,
 * and the reason when the budget is exceeded (the stage then fails).
 */
export function judgeFailures(
  health: CohortFailures,
  gates: Gates,
  cohort: number,
): { figures: GateFigure[]; failures: StageFailures; over: string | undefined } {
  const budget = failureBudget(gates.failures, cohort)
  const figures: GateFigure[] = []
  if (gates.restarts) {
    const { max } = gates.restarts
    figures.push({ gate: 'restarts', value: health.worstRestarts, threshold: max, pass: health.worstRestarts <= max })
  }
  if (gates.ooms) {
    const { max } = gates.ooms
    figures.push({ gate: 'ooms', value: health.worstOoms, threshold: max, pass: health.worstOoms <= max })
  }
  figures.push({ gate: 'load_failures', value: health.broken, threshold: 0, pass: health.broken === 0 })
  const n = health.failed.length
  figures.push({ gate: 'failed_devices', value: n, threshold: budget, pass: n <= budget })
  let over: string | undefined
  if (n > budget) {
    const named = health.failed.slice(0, FAILED_NAMED_IN_REASON).map((f) => `${f.device}: ${f.reasons.join(', ')}`)
    const more = n > named.length ? `; ${n - named.length} more` : ''
    over = `${n} of ${cohort} cohort devices failed, budget ${budget} (${named.join('; ')}${more})`
  }
  const failed = health.failed.map((f) => ({ device: f.device, reasons: f.reasons }))
  return { figures, failures: { cohort, budget, failed }, over }
}
