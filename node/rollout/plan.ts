/**
 * Plumbing between the message store and the pure rollout logic (`decide`, `activationFor`):
 * gathers one release's inputs from the verified messages, finds the baseline release, picks the
 * version a device should run, and shapes a release's rollout status for /status and the CLI.
 * What is rolled out is a `RolloutSubject`: a model release's manifest, or an agent release under
 * the name `llmesh-agent` (agent-releases.ts), decided by the same `decide`.
 * No I/O, no clock: `now` comes in.
 */

import { latestReports as latestReportOf } from '../../protocols/fleet/device-view.ts'
import type { StageFailures } from '../../protocols/rollout/gates.ts'
import {
  type Activation,
  type DecideInput,
  type Decision,
  decide,
  isAgentRelease,
  type RolloutState,
  runsRelease,
  type VerifiedReport,
  type VerifiedVerdict,
} from '../../protocols/rollout/index.ts'
import type { ReleaseRef } from '../../protocols/schemas/common.ts'
import type {
  DeviceEnrollment,
  GateFigure,
  HealthReport,
  OperatorCommand,
  ReleaseManifest,
  Revocation,
} from '../../protocols/schemas/index.ts'
import type { MessageStore } from '../mesh/message-store.ts'

/** The part of the message store the plumbing reads. */
export type MessageSource = Pick<MessageStore, 'list'>

/**
 * What a rollout is about: a model release's manifest, or an agent release as `agentSubject`
 * shapes it (no probes: the quality gate has no probe set to judge).
 */
export type RolloutSubject = Pick<ReleaseManifest, 'model' | 'version' | 'seq' | 'policy' | 'created_at'> &
  Partial<Pick<ReleaseManifest, 'probes' | 'provenance' | 'downgrade'>>

/** `model@version`. */
export function releaseKey(r: ReleaseRef): string {
  return `${r.model}@${r.version}`
}

/**
 * The release `m` replaces: the same model's release with the highest seq below `m`'s that is not
 * aborted (devices went back to it), or null for a model's first release.
 */
export function previousRelease(
  releases: readonly RolloutSubject[],
  m: RolloutSubject,
  isAborted: (key: string) => boolean,
): ReleaseRef | null {
  let best: RolloutSubject | null = null
  for (const r of releases) {
    if (r.model !== m.model || r.seq >= m.seq || isAborted(releaseKey(r))) continue
    if (best === null || r.seq > best.seq) best = r
  }
  return best === null ? null : { model: best.model, version: best.version }
}

/** The store's messages that decisions read, listed once per tick and shared by every release. */
export interface StoreSnapshot {
  enrollments: DeviceEnrollment[]
  revocations: Revocation[]
  reports: VerifiedReport[]
  commands: OperatorCommand[]
  verdicts: VerifiedVerdict[]
}

/**
 * Lists what decisions read. Enrollments are the one in force per device (the operator's, else a
 * won invite claim: protocols/membership), so pending devices never take a cohort slot.
 */
export function snapshot(store: MessageSource & Pick<MessageStore, 'enrollmentsInForce'>, now: number): StoreSnapshot {
  return {
    enrollments: store.enrollmentsInForce(now),
    revocations: store.list('Revocation').map((x) => x.message),
    reports: store.list('HealthReport').map((x) => ({ report: x.message, digest: x.digest })),
    commands: store.list('OperatorCommand').map((x) => x.message),
    verdicts: store.list('Verdict').map((x) => ({ verdict: x.message, digest: x.digest })),
  }
}

/**
 * Everything `decide` needs for one release. Reports whose window starts before the release was
 * created can count for none of its stages (every stage starts at or after `created_at`), so
 * they are left out.
 */
export function gatherInputs(
  snap: StoreSnapshot,
  m: RolloutSubject,
  previous: ReleaseRef | null,
  state: RolloutState | undefined,
  now: number,
): DecideInput {
  const mine = (x: { model: string; version: string }) => x.model === m.model && x.version === m.version
  const input: DecideInput = {
    policy: m.policy,
    release: { model: m.model, version: m.version },
    releasedAt: m.created_at,
    previous,
    enrollments: snap.enrollments,
    revocations: snap.revocations,
    reports: snap.reports.filter((r) => r.report.window.start >= m.created_at),
    commands: snap.commands.filter(mine),
    verdicts: snap.verdicts.filter((v) => mine(v.verdict)),
    now,
    probeSet: m.probes === undefined ? undefined : m.provenance?.validation_dataset?.digest,
  }
  if (state !== undefined) input.state = state
  return input
}

/** Runs `decide` for one release. */
export function decideRelease(
  snap: StoreSnapshot,
  m: RolloutSubject,
  previous: ReleaseRef | null,
  state: RolloutState | undefined,
  now: number,
): Decision {
  return decide(gatherInputs(snap, m, previous, state, now))
}

/** One release of a model as target selection sees it. */
export interface TargetCandidate {
  version: string
  seq: number
  activation: Activation
}

/**
 * The version a device should run for one model: the highest-seq release whose activation is
 * `activate` and that is not bad (aborted by the fleet, or failed here). Null: nothing to run.
 */
export function chooseTarget(candidates: readonly TargetCandidate[], bad: ReadonlySet<string>): string | null {
  let best: TargetCandidate | null = null
  for (const c of candidates) {
    if (c.activation !== 'activate' || bad.has(c.version)) continue
    if (best === null || c.seq > best.seq) best = c
  }
  return best?.version ?? null
}

/** A release's rollout as /status, `GET /rollout` and `llmesh rollout status` show it. */
export interface ReleaseRolloutStatus {
  model: string
  version: string
  seq: number
  /** `aborted`, `promoted`, `paused` or the current stage's name. */
  state: string
  phase: Decision['status']['phase']
  stage: number
  stageName: string
  stageStartedAt: number | null
  previous: string | null
  gate: {
    outcome: string
    figures: GateFigure[]
    reasons: string[]
    reporters: number
    required: number
  } | null
  verdicts: Array<{
    digest: string
    device: string
    stage: number
    outcome: 'promote' | 'abort'
    decided_at: number
    evidence: number
    adopted: boolean
    check: 'valid' | 'pending' | 'invalid'
    /** The verdict's quality-probe figures (`quality.*`), the dashboard's Dev view plots them. */
    quality: GateFigure[]
  }>
  commands: Array<{ id: string; action: string; issued_at: number; to_stage?: string }>
  /** Device ids per stage name (the cohort that joins at that stage), plus `excluded`. */
  cohorts: Record<string, string[]>
  /**
   * Devices in the release's scope (not excluded) whose latest health report lists the version as
   * staged or active, out of all of them; `missing` names the rest. When `devices === of`, every
   * device holds the file and the seed may go offline.
   */
  prestaged: { devices: number; of: number; missing: string[] }
  abortedBy?: string
  /** The higher version this release was published below, when the operator allowed a downgrade. */
  downgradeFrom?: string
  /** Failed devices of the stage's cohort with their reasons, and the failure budget (decide()). */
  failures?: StageFailures | null
  /**
   * An aborted release only: devices whose latest report still runs it, with why when they say
   * (an agent version with nothing to go back to: the report's `agent.stuck`). Absent when none.
   */
  stillRunning?: Array<{ device: string; reason?: string }>
}

/** Each device's latest health report (by window end): build once per status, for every release. */
export function latestReports(store: MessageSource): Map<string, HealthReport> {
  return latestReportOf(store.list('HealthReport').map((x) => x.message))
}

/** Who in the release's scope holds it (staged or active), by each device's latest health report. */
function prestagedOf(
  latest: Map<string, HealthReport>,
  m: RolloutSubject,
  d: Decision,
): ReleaseRolloutStatus['prestaged'] {
  const has = (x: { model: string; version: string }) => x.model === m.model && x.version === m.version
  const holds = (id: string) => {
    const h = latest.get(id)
    return h !== undefined && (runsRelease(h, m) || (h.staged ?? []).some(has))
  }
  const scope = [...d.assignment].filter(([, k]) => k !== null).map(([id]) => id)
  const missing = scope.filter((id) => !holds(id)).sort()
  return { devices: scope.length - missing.length, of: scope.length, missing }
}

/** Shapes the status of one release from its decision and the store's verdicts. */
export function releaseStatus(
  store: MessageSource,
  m: RolloutSubject,
  previous: ReleaseRef | null,
  d: Decision,
  latest: Map<string, HealthReport> = latestReports(store),
): ReleaseRolloutStatus {
  const cohorts: Record<string, string[]> = {}
  for (const s of m.policy.stages) cohorts[s.name] = []
  cohorts.excluded = []
  for (const [id, k] of d.assignment) (k === null ? cohorts.excluded : cohorts[m.policy.stages[k].name]).push(id)
  for (const list of Object.values(cohorts)) list.sort()
  const pending = new Set(d.pending.map((p) => p.digest))
  const rejected = new Set(d.rejected.map((r) => r.digest))
  const adopted = new Set(d.view.adopted)
  const verdicts = store
    .list('Verdict')
    .filter((x) => x.message.model === m.model && x.message.version === m.version)
    .map((x) => ({
      digest: x.digest,
      device: x.message.device,
      stage: x.message.stage,
      outcome: x.message.outcome,
      decided_at: x.message.decided_at,
      evidence: x.message.evidence.length,
      adopted: adopted.has(x.digest),
      quality: x.message.figures.filter((f) => f.gate.startsWith('quality.')),
      check: (pending.has(x.digest) ? 'pending' : rejected.has(x.digest) ? 'invalid' : 'valid') as
        | 'valid'
        | 'pending'
        | 'invalid',
    }))
    .sort((a, b) => a.decided_at - b.decided_at)
  const out: ReleaseRolloutStatus = {
    model: m.model,
    version: m.version,
    seq: m.seq,
    state: d.status.status,
    phase: d.status.phase,
    stage: d.status.stage,
    stageName: d.status.stageName,
    stageStartedAt: d.view.stageStartedAt[d.view.stage] ?? null,
    previous: previous === null ? null : releaseKey(previous),
    gate:
      d.gate === null
        ? null
        : {
            outcome: d.gate.outcome,
            figures: d.gate.figures,
            reasons: d.gate.reasons,
            reporters: d.gate.reporters,
            required: d.gate.required,
          },
    verdicts,
    commands: Object.values(d.state.commands).sort((a, b) => a.issued_at - b.issued_at),
    cohorts,
    prestaged: prestagedOf(latest, m, d),
    failures: d.failures,
  }
  if (d.view.abortedBy !== undefined) out.abortedBy = d.view.abortedBy
  if (d.view.aborted) {
    const still = [...latest].filter(([, h]) => runsRelease(h, m)).sort(([a], [b]) => (a < b ? -1 : 1))
    const why = (h: HealthReport) =>
      isAgentRelease(m) && h.agent?.stuck !== undefined ? { reason: h.agent.stuck } : {}
    if (still.length > 0) out.stillRunning = still.map(([device, h]) => ({ device, ...why(h) }))
  }
  if (m.downgrade !== undefined) out.downgradeFrom = m.downgrade.from
  return out
}
