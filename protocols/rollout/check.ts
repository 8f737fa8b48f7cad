/**
 * Checking a received verdict before adopting it. No node trusts another node's judgment: the
 * verdict's stage is re-evaluated with the same pure gate function over exactly the reports its
 * evidence names (looked up by digest among locally verified reports), with the verdict's own
 * window as [stageStartedAt, now]. The state machine (state.ts) separately requires that window
 * to start no earlier than the stage did and the stage to have been reached.
 * - `valid`: the evidence supports the outcome (pass → promote, fail → abort).
 * - `pending`: some evidence is not here yet; fetch the `missing` digests through anti-entropy
 *   and check again.
 * - `invalid`: malformed, wrong release, unenrolled issuer, or evidence that does not support it.
 * A promotion therefore always carries min(min_reports, cohort size) distinct enrolled devices'
 * reports from the stage's cohort: a partitioned minority cannot promote without that quorum, but
 * can abort with one device's signed crash reports.
 */
import type { ReleaseRef } from '../schemas/common.ts'
import type { RolloutPolicy } from '../schemas/policy.ts'
import type { Verdict } from '../schemas/rollout.ts'
import type { CohortDevice, StageAssignment } from './cohorts.ts'
import { evaluateStage, type StageEvaluation, type VerifiedReport } from './gates.ts'

/** What is needed to check a verdict. */
export interface CheckInput {
  policy: RolloutPolicy
  release: ReleaseRef
  previous: ReleaseRef | null
  /** Enrolled, non-revoked devices. */
  devices: readonly CohortDevice[]
  assignment?: StageAssignment
  /** Locally verified reports by digest. */
  reports: ReadonlyMap<string, VerifiedReport>
  /** The manifest's probe set digest, for the quality gate. */
  probeSet?: string
}

/** Result of checking a verdict. */
export type VerdictCheck =
  | { status: 'valid'; evaluation: StageEvaluation }
  | { status: 'pending'; missing: string[] }
  | { status: 'invalid'; reason: string }

/** Re-evaluates a verdict against the policy and its evidence. Pure. */
export function checkVerdict(verdict: Verdict, input: CheckInput): VerdictCheck {
  const { policy, release } = input
  const invalid = (reason: string): VerdictCheck => ({ status: 'invalid', reason })
  if (verdict.model !== release.model || verdict.version !== release.version) return invalid('another release')
  const last = policy.stages.length - 1
  if (verdict.stage > last) return invalid(`no stage ${verdict.stage}`)
  if (verdict.outcome === 'promote' && verdict.stage === last) return invalid('nothing to promote after the last stage')
  if (verdict.window.start > verdict.window.end || verdict.window.end > verdict.decided_at) {
    return invalid('window must end at or before the decision')
  }
  if (!input.devices.some((d) => d.id === verdict.device)) return invalid('issuer is not an enrolled device')
  const digests = new Set<string>()
  const missing: string[] = []
  const reports: VerifiedReport[] = []
  for (const e of verdict.evidence) {
    if (digests.has(e.digest)) return invalid(`evidence ${e.digest} listed twice`)
    digests.add(e.digest)
    const r = input.reports.get(e.digest)
    if (!r) {
      missing.push(e.digest)
      continue
    }
    if (r.report.device !== e.device || r.report.seq !== e.seq) return invalid(`evidence ${e.digest} is mislabeled`)
    reports.push(r)
  }
  if (missing.length > 0) return { status: 'pending', missing }
  const evaluation = evaluateStage({
    policy,
    stage: verdict.stage,
    release,
    previous: input.previous,
    devices: input.devices,
    assignment: input.assignment,
    reports,
    stageStartedAt: verdict.window.start,
    now: verdict.window.end,
    probeSet: input.probeSet,
  })
  const wanted = verdict.outcome === 'promote' ? 'pass' : 'fail'
  if (evaluation.outcome !== wanted) {
    return invalid(`evidence gives ${evaluation.outcome}, not ${wanted}: ${evaluation.reasons.join('; ')}`)
  }
  return { status: 'valid', evaluation }
}
