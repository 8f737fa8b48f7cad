/**
 * The whole pure rollout decision of one node for one release.
 *
 * How it works, on every call (typically on each new message and on a timer):
 * 1. The deciding device set: latest enrollment per device, minus expired and revoked ones.
 * 2. Cohorts: `assignStages` over that set (same on every node).
 * 3. Every received verdict is checked (`checkVerdict`): valid ones become facts of the state,
 *    pending ones list the evidence to fetch, invalid ones are dropped. Verified operator commands
 *    for this release become facts too. The state joins an optional previous state (`merge`).
 * 4. The view (`deriveView`) gives the stage, its start and the phase.
 * 5. Unless aborted, the current stage is evaluated (`evaluateStage`) over [stage start, now]:
 *    `fail` → publish an abort verdict; `pass` (not paused, not the last stage) → publish a promote
 *    verdict. Adopting one's own verdict moves the state, so a node never re-issues it.
 * Nothing here reads a clock, a socket or a disk: `now` and every message come in as arguments.
 */
import { latestEnrollment } from '../fleet/device-view.ts'
import type { ReleaseRef } from '../schemas/common.ts'
import type { DeviceEnrollment, Revocation } from '../schemas/enrollment.ts'
import type { RolloutPolicy } from '../schemas/policy.ts'
import type { OperatorCommand, Verdict } from '../schemas/rollout.ts'
import { checkVerdict } from './check.ts'
import { assignStages, type CohortDevice, cohortSize, inCohort, type StageAssignment } from './cohorts.ts'
import { MAX_EVIDENCE } from './constants.ts'
import { cohortFailures, judgeFailures } from './failures.ts'
import {
  evaluateStage,
  reportsInWindow,
  type StageEvaluation,
  type StageFailures,
  type VerifiedReport,
} from './gates.ts'
import { merge } from './merge.ts'
import {
  addCommand,
  addVerdict,
  deriveView,
  newRolloutState,
  type RolloutState,
  type RolloutStatus,
  type RolloutView,
  rolloutStatus,
  verdictFact,
} from './state.ts'

/** A verdict to sign and publish: the caller adds type, v, fleet and its own device id. */
export type VerdictDraft = Omit<Verdict, 'type' | 'v' | 'fleet' | 'device'>

/** A verified verdict with the digest of its wire envelope. */
export interface VerifiedVerdict {
  verdict: Verdict
  digest: string
}

/** Inputs of `decide`. Every message has already passed signature verification. */
export interface DecideInput {
  policy: RolloutPolicy
  release: ReleaseRef
  /** The manifest's `created_at`: start of stage 0. */
  releasedAt: number
  /** The version this one replaces (baseline), or null for a model's first release. */
  previous: ReleaseRef | null
  enrollments: readonly DeviceEnrollment[]
  revocations: readonly Revocation[]
  reports: readonly VerifiedReport[]
  /** Operator commands (others' releases are ignored). */
  commands: readonly OperatorCommand[]
  verdicts: readonly VerifiedVerdict[]
  /** Facts adopted earlier (optional): joined with what the messages give. */
  state?: RolloutState
  now: number
  /** The manifest's probe set digest (`provenance.validation_dataset.digest`), for the quality gate. */
  probeSet?: string
}

/** Output of `decide`. */
export interface Decision {
  state: RolloutState
  view: RolloutView
  status: RolloutStatus
  devices: CohortDevice[]
  assignment: StageAssignment
  /** The current stage's evaluation (null once aborted). */
  gate: StageEvaluation | null
  /**
   * Failed devices of the stage's cohort with their reasons, for people: the current stage's, or
   * once aborted by a verdict, those its evidence shows (null when an operator aborted).
   */
  failures: StageFailures | null
  verdictToPublish?: VerdictDraft
  /** Verdicts waiting for evidence, with the report digests to fetch. */
  pending: Array<{ digest: string; missing: string[] }>
  rejected: Array<{ digest: string; reason: string }>
}

/** The devices that take part in decisions: latest enrollment per device, not expired, not revoked. */
export function activeDevices(
  enrollments: readonly DeviceEnrollment[],
  revocations: readonly Revocation[],
  now: number,
): CohortDevice[] {
  const revoked = new Set(revocations.map((r) => r.device))
  const byDevice = new Map<string, Array<{ message: DeviceEnrollment }>>()
  for (const e of enrollments) {
    const list = byDevice.get(e.device)
    if (list === undefined) byDevice.set(e.device, [{ message: e }])
    else list.push({ message: e })
  }
  return [...byDevice.values()]
    .map((records) => (latestEnrollment(records) as { message: DeviceEnrollment }).message)
    .filter((e) => !revoked.has(e.device) && (e.expires_at === undefined || e.expires_at > now))
    .map((e) => ({ id: e.device, tags: [...e.tags] }))
    .sort((a, b) => (a.id < b.id ? -1 : 1))
}

/** Runs the whole decision. Pure. */
export function decide(input: DecideInput): Decision {
  const { policy, release, previous, now } = input
  const devices = activeDevices(input.enrollments, input.revocations, now)
  const assignment = assignStages(policy, release, devices)
  const byDigest = new Map(input.reports.map((r) => [r.digest, r]))
  let state = newRolloutState(
    `${release.model}@${release.version}`,
    policy.stages.map((s) => s.name),
    input.releasedAt,
  )
  if (input.state) state = merge(state, input.state)
  for (const c of input.commands) {
    if (c.model === release.model && c.version === release.version) state = addCommand(state, c)
  }
  const pending: Decision['pending'] = []
  const rejected: Decision['rejected'] = []
  const check = { policy, release, previous, devices, assignment, reports: byDigest, probeSet: input.probeSet }
  for (const { verdict, digest } of input.verdicts) {
    if (verdict.model !== release.model || verdict.version !== release.version || state.verdicts[digest]) continue
    const r = checkVerdict(verdict, check)
    if (r.status === 'valid') state = addVerdict(state, verdictFact(verdict, digest))
    else if (r.status === 'pending') pending.push({ digest, missing: r.missing })
    else rejected.push({ digest, reason: r.reason })
  }
  const view = deriveView(state)
  const out: Decision = {
    state,
    view,
    status: rolloutStatus(state),
    devices,
    assignment,
    gate: null,
    failures: null,
    pending,
    rejected,
  }
  if (view.aborted) {
    out.failures = abortFailures(input, devices, assignment, byDigest, new Set(view.adopted))
    return out
  }

  const stageStartedAt = view.stageStartedAt[view.stage]
  const evalInput = {
    policy,
    stage: view.stage,
    release,
    previous,
    devices,
    assignment,
    stageStartedAt,
    now,
    probeSet: input.probeSet,
  }
  let gate = evaluateStage({ ...evalInput, reports: input.reports })
  if (gate.evidence.length > MAX_EVIDENCE) {
    // Too much evidence for one verdict: judge (and prove) on a deterministic subset instead.
    const keep = new Set(gate.evidence.slice(0, MAX_EVIDENCE).map((e) => e.digest))
    const subset = evaluateStage({ ...evalInput, reports: input.reports.filter((r) => keep.has(r.digest)) })
    if (subset.outcome === gate.outcome) gate = subset
    else gate = { ...gate, outcome: 'inconclusive', evidence: [], reasons: [...gate.reasons, 'evidence too large'] }
  }
  out.gate = gate
  out.failures = gate.failures
  const last = policy.stages.length - 1
  const promote = gate.outcome === 'pass' && !view.paused && view.stage < last
  if (gate.outcome === 'fail' || promote) {
    out.verdictToPublish = {
      model: release.model,
      version: release.version,
      stage: view.stage,
      outcome: gate.outcome === 'fail' ? 'abort' : 'promote',
      decided_at: now,
      window: { start: stageStartedAt, end: now },
      evidence: gate.evidence,
      figures: gate.figures,
    }
  }
  return out
}

/**
 * The failed devices an adopted abort verdict's evidence shows (bounded by the evidence, not by
 * the reports since), or null when no verdict aborted the release.
 */
function abortFailures(
  input: DecideInput,
  devices: readonly CohortDevice[],
  assignment: StageAssignment,
  byDigest: ReadonlyMap<string, VerifiedReport>,
  adopted: ReadonlySet<string>,
): StageFailures | null {
  const v = input.verdicts.find((x) => x.verdict.outcome === 'abort' && adopted.has(x.digest))?.verdict
  if (v === undefined) return null
  const evidence = v.evidence.flatMap((e) => byDigest.get(e.digest) ?? [])
  const views = reportsInWindow(evidence, new Set(devices.map((d) => d.id)), v.window.start, v.window.end)
  const cohort = [...views.values()].filter((x) => inCohort(assignment, x.id, v.stage))
  const { gates } = input.policy
  return judgeFailures(cohortFailures(cohort, input.release, gates), gates, cohortSize(assignment, v.stage)).failures
}

/** What a device should run now for this release. */
export type Activation = 'activate' | 'stay' | 'rollback'

/**
 * Whether a device should run the release now: `rollback` (to its last known-good version) once
 * the release is aborted, `activate` when its cohort's stage has been reached, `stay` otherwise
 * (including excluded devices). A pause holds the stage, so it never deactivates anyone.
 */
export function activationFor(deviceId: string, view: RolloutView, assignment: StageAssignment): Activation {
  if (view.aborted) return 'rollback'
  const k = assignment.get(deviceId)
  return k !== undefined && k !== null && k <= view.stage ? 'activate' : 'stay'
}
