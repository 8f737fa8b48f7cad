/**
 * Pure gate evaluation of one rollout stage.
 *
 * How it works:
 * - Window: [stageStartedAt, now]. A report counts when its own window lies inside it, its device
 *   is enrolled and not revoked, and (device, seq) was not seen before (replays and duplicates
 *   collapse; of two different reports with one (device, seq) the lower digest wins everywhere).
 * - Candidate: devices in the cohorts up to this stage. One device one vote: a device votes for
 *   the candidate when its latest report says it runs the new version (runs.ts: a model version in
 *   `active`, the agent release `llmesh-agent@<v>` in `agent.version`); its inference figures are
 *   all its reports' figures for that version in the window folded together (reports are
 *   per-interval deltas: counts add, sketches merge). Devices outside the cohort never count.
 * - Baseline: devices whose latest report says they run the previous version, same window.
 * - Gates: p95 latency of the merged candidate sketches and error rate, absolute (`max`) and
 *   relative to the baseline (`max_regression_pct`, plus REGRESSION_FLOOR); restarts within any
 *   `per_ms` of one device (summed over all its reports of the candidate version); OOMs of one
 *   device over the window; any load failure, probe failure or local rollback of the candidate
 *   version (the device could not run it). A device over one of these has failed; the stage fails
 *   only when more cohort devices failed than the policy's failure budget (failures.ts).
 * - Outcome: `fail` as soon as any gate fails, even before the window ends (a crash loop aborts
 *   fast), with the reports that show it as evidence (for the budget: every failed device's). `pass` only when the window has elapsed, at
 *   least min(min_reports, cohort size) distinct candidate devices reported, and every gate has
 *   the data to judge and passes. Anything else is `inconclusive`: hold, never promote.
 * - Quality (`gates.quality`, quality-gate.ts): probe figures of the cohort's devices against
 *   `min_agreement` and, relative to devices on the previous version, `max_perplexity_regression_pct`.
 * - The relative gates need a baseline while eligible devices remain outside the cohort; once the
 *   cohort holds every eligible device (last stage, tiny fleets), and for a model's first release
 *   (`previous` null), only the absolute gates apply.
 */

import type { ReleaseRef } from '../schemas/common.ts'
import type { InferenceStats } from '../schemas/health.ts'
import type { RolloutPolicy } from '../schemas/policy.ts'
import type { EvidenceRef, GateFigure } from '../schemas/rollout.ts'
import { assignStages, type CohortDevice, cohortSize, inCohort, type StageAssignment } from './cohorts.ts'
import { GATE_MIN_REQUESTS, LATENCY_QUANTILE, REGRESSION_FLOOR, SKETCH_ALPHA, VOTE_MAX_AGE_MS } from './constants.ts'
import { cohortFailures, judgeFailures } from './failures.ts'
import { judgeQuality } from './quality-gate.ts'
import type { StageFailures, VerifiedReport } from './report-types.ts'
import { inferenceFor, runsRelease } from './runs.ts'
import { mergeSketches, quantile } from './sketch.ts'

export type { StageFailures, VerifiedReport } from './report-types.ts'

/** Inputs of one stage's evaluation. */
export interface StageEvalInput {
  policy: RolloutPolicy
  /** Index of the stage judged. */
  stage: number
  release: ReleaseRef
  /** The version devices ran before (the baseline), or null for a model's first release. */
  previous: ReleaseRef | null
  /** Enrolled devices, revoked ones already removed. */
  devices: readonly CohortDevice[]
  /** Precomputed `assignStages(policy, release, devices)` (optional, for speed). */
  assignment?: StageAssignment
  reports: readonly VerifiedReport[]
  stageStartedAt: number
  now: number
  /** The manifest's probe set digest (`provenance.validation_dataset.digest`), for the quality gate. */
  probeSet?: string
}

/** Result of a stage's evaluation. */
export type GateOutcome = 'pass' | 'fail' | 'inconclusive'
export interface StageEvaluation {
  outcome: GateOutcome
  figures: GateFigure[]
  /** Reports supporting the outcome (empty when inconclusive), sorted by digest. */
  evidence: EvidenceRef[]
  /** Why the outcome is not `pass`, for people. */
  reasons: string[]
  /** Distinct candidate devices that reported, and how many are required. */
  reporters: number
  required: number
  /** The cohort's failed devices (whatever the outcome) against the stage's failure budget. */
  failures: StageFailures
}

interface DeviceView {
  id: string
  reports: VerifiedReport[] // sorted by seq
  latest: VerifiedReport
}

function ref(r: VerifiedReport): EvidenceRef {
  return { device: r.report.device, seq: r.report.seq, digest: r.digest }
}

/** Groups the reports that count (enrolled, in window, deduplicated) by device. */
export function reportsInWindow(
  reports: readonly VerifiedReport[],
  enrolled: ReadonlySet<string>,
  start: number,
  end: number,
): Map<string, DeviceView> {
  const bySeq = new Map<string, VerifiedReport>()
  for (const r of reports) {
    const w = r.report.window
    if (!enrolled.has(r.report.device) || w.start < start || w.end > end || w.start > w.end) continue
    const key = `${r.report.device}/${r.report.seq}`
    const had = bySeq.get(key)
    if (!had || r.digest < had.digest) bySeq.set(key, r)
  }
  const out = new Map<string, DeviceView>()
  for (const r of bySeq.values()) {
    const v = out.get(r.report.device)
    if (v) v.reports.push(r)
    else out.set(r.report.device, { id: r.report.device, reports: [r], latest: r })
  }
  for (const v of out.values()) {
    v.reports.sort((a, b) => a.report.seq - b.report.seq)
    v.latest = v.reports[v.reports.length - 1]
  }
  return out
}

/**
 * A device's inference figures for one version over the whole stage window: reports are
 * per-interval deltas, so counts add up and latency sketches merge (every request counts once).
 */
function statsOf(
  v: DeviceView,
  rel: ReleaseRef,
  since = Number.NEGATIVE_INFINITY,
): (InferenceStats & { from: VerifiedReport[] }) | undefined {
  const from = v.reports.filter((r) => r.report.window.end > since && inferenceFor(r.report, rel).length > 0)
  if (from.length === 0) return undefined
  const all = from.flatMap((r) => inferenceFor(r.report, rel))
  const sketches = all.map((s) => s.latency_ms).filter((k) => k.alpha === SKETCH_ALPHA)
  return {
    ...all[0],
    requests: all.reduce((n, s) => n + s.requests, 0),
    errors: all.reduce((n, s) => n + s.errors, 0),
    tokens_in: all.reduce((n, s) => n + s.tokens_in, 0),
    tokens_out: all.reduce((n, s) => n + s.tokens_out, 0),
    concurrency_max: Math.max(...all.map((s) => s.concurrency_max)),
    latency_ms: sketches.length > 0 ? mergeSketches(...sketches) : all[0].latency_ms,
    from,
  }
}

/** Evaluates one stage's gates. Pure and deterministic: every node computes the same result. */
export function evaluateStage(input: StageEvalInput): StageEvaluation {
  const { policy, stage, release, previous, devices, stageStartedAt, now } = input
  const gates = policy.gates
  const assignment = input.assignment ?? assignStages(policy, release, devices)
  const enrolled = new Set(devices.map((d) => d.id))
  const views = reportsInWindow(input.reports, enrolled, stageStartedAt, now)
  const ids = [...views.keys()].sort()

  const candidates: DeviceView[] = []
  const baseline: DeviceView[] = []
  for (const id of ids) {
    const v = views.get(id)!
    const onPrevious = previous !== null && runsRelease(v.latest.report, previous)
    if (inCohort(assignment, id, stage)) candidates.push(v)
    if (onPrevious) baseline.push(v)
  }
  // Only fresh votes count: stale reports held by a partitioned minority make no quorum.
  const voters = candidates.filter(
    (v) =>
      runsRelease(v.latest.report, release) &&
      v.latest.report.window.end >= now - (gates.vote_max_age_ms ?? VOTE_MAX_AGE_MS),
  )
  const size = cohortSize(assignment, stage)
  const required = Math.min(gates.min_reports, size)
  const eligibleOutside = [...assignment.values()].some((k) => k !== null && k > stage)
  const needBaseline = previous !== null && eligibleOutside

  const figures: GateFigure[] = []
  const reasons: string[] = []
  const failEvidence = new Map<string, EvidenceRef>()
  let inconclusive = false
  const addFail = (rs: Iterable<VerifiedReport>) => {
    for (const r of rs) failEvidence.set(r.digest, ref(r))
  }

  // Inference figures of each voter over every one of its reports in the window.
  const candStats = voters.map((v) => ({ v, s: statsOf(v, release) })).filter((x) => x.s)
  // The baseline is compared over the same span as the candidate's data (Kayenta: a baseline of the
  // same age), not over the whole stage window, whose start holds the download/switch turbulence.
  const candSince = Math.min(...candStats.flatMap((x) => x.s!.from.map((r) => r.report.window.start)))
  const baseStats = previous ? baseline.map((v) => ({ v, s: statsOf(v, previous, candSince) })).filter((x) => x.s) : []
  const sum = (xs: typeof candStats, f: (s: NonNullable<(typeof candStats)[0]['s']>) => number) =>
    xs.reduce((n, x) => n + f(x.s!), 0)
  const candRequests = sum(candStats, (s) => s.requests)
  const baseRequests = sum(baseStats, (s) => s.requests)
  const p95 = (xs: typeof candStats) => {
    const sk = xs.map((x) => x.s!.latency_ms).filter((k) => k.alpha === SKETCH_ALPHA)
    return sk.length ? quantile(mergeSketches(...sk), LATENCY_QUANTILE) : null
  }

  const metric = (
    name: 'latency_p95_ms' | 'error_rate',
    value: number | null,
    baseValue: number | null,
    enough: boolean,
    baseEnough: boolean,
  ) => {
    const gate = gates[name]
    if (!gate) return
    const judgeable = enough && value !== null
    // Nothing to judge: no device is required to report and none served a request.
    const vacuous = required === 0 && candRequests === 0
    if (gate.max !== undefined) {
      const pass = judgeable ? value! <= gate.max : vacuous
      figures.push({ gate: `${name}.max`, value, threshold: gate.max, pass })
      if (judgeable && !pass) {
        reasons.push(`${name} ${value} > ${gate.max}`)
        addFail(candStats.flatMap((x) => x.s!.from))
      } else if (!pass) {
        inconclusive = true
        reasons.push(`${name}: fewer than ${GATE_MIN_REQUESTS} requests`)
      }
    }
    if (gate.max_regression_pct !== undefined && previous) {
      const baseOk = baseEnough && baseValue !== null
      if (!baseOk && !needBaseline) return
      const threshold = baseOk ? baseValue! * (1 + gate.max_regression_pct / 100) + REGRESSION_FLOOR[name] : null
      const pass = judgeable && baseOk ? value! <= threshold! : vacuous
      figures.push({ gate: `${name}.regression`, value, threshold, baseline: baseValue, pass })
      if (judgeable && baseOk && !pass) {
        reasons.push(`${name} ${value} > ${threshold} (baseline ${baseValue})`)
        addFail(candStats.flatMap((x) => x.s!.from))
        addFail(baseStats.flatMap((x) => x.s!.from))
      } else if (!pass) {
        inconclusive = true
        reasons.push(`${name}: no baseline or candidate data to compare`)
      }
    }
  }
  const enough = candRequests >= GATE_MIN_REQUESTS
  const baseEnough = baseRequests >= GATE_MIN_REQUESTS
  metric('latency_p95_ms', p95(candStats), p95(baseStats), enough, baseEnough)
  metric(
    'error_rate',
    candRequests > 0 ? sum(candStats, (s) => s.errors) / candRequests : null,
    baseRequests > 0 ? sum(baseStats, (s) => s.errors) / baseRequests : null,
    enough,
    baseEnough,
  )

  // Health events of the candidate version, over every counted report of each cohort device:
  // failed devices, held against the stage's failure budget (failures.ts).
  const health = cohortFailures(candidates, release, gates)
  const judged = judgeFailures(health, gates, size)
  figures.push(...judged.figures)
  if (judged.over !== undefined) {
    reasons.push(judged.over)
    for (const f of health.failed) addFail(f.evidence)
  }
  const failures = judged.failures
  // Output quality on the release's probes (quality-gate.ts).
  const quality = gates.quality
    ? judgeQuality({
        gate: gates.quality,
        probeSet: input.probeSet,
        release,
        previous,
        candidates,
        baseline,
        cohort: size,
        needBaseline,
      })
    : undefined
  if (quality) {
    figures.push(...quality.figures)
    if (quality.failed.length > 0) reasons.push(...quality.reasons)
    else if (quality.inconclusive) {
      inconclusive = true
      reasons.push(...quality.reasons)
    }
    addFail(quality.failed)
  }
  const windowMs = policy.stages[stage].window_ms
  figures.push({
    gate: 'window_ms',
    value: now - stageStartedAt,
    threshold: windowMs,
    pass: now - stageStartedAt >= windowMs,
  })
  figures.push({ gate: 'min_reports', value: voters.length, threshold: required, pass: voters.length >= required })

  const sorted = (m: Iterable<EvidenceRef>) =>
    [...m].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0))
  const base = { figures, reporters: voters.length, required, failures }
  if (failEvidence.size > 0) return { ...base, outcome: 'fail', evidence: sorted(failEvidence.values()), reasons }
  if (now - stageStartedAt < windowMs) {
    inconclusive = true
    reasons.push(`window: ${now - stageStartedAt} of ${windowMs} ms elapsed`)
  }
  if (voters.length < required) {
    inconclusive = true
    reasons.push(`${voters.length} of ${required} required devices reported`)
  }
  if (inconclusive) return { ...base, outcome: 'inconclusive', evidence: [], reasons }
  const used = new Map<string, EvidenceRef>()
  // Every report of the voters (their figures and health events) and the baseline's figures.
  for (const v of voters) for (const r of v.reports) used.set(r.digest, ref(r))
  for (const x of baseStats) for (const r of x.s!.from) used.set(r.digest, ref(r))
  for (const r of quality?.used ?? []) used.set(r.digest, ref(r))
  return { ...base, outcome: 'pass', evidence: sorted(used.values()), reasons }
}
