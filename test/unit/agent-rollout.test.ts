/**
 * Agent releases under the rollout stages (issue 15): the pure rollout logic (protocols/rollout)
 * judges `llmesh-agent@<v>` with the very rules of model releases. A device runs the agent release
 * when its report's `agent.version` says so (runs.ts); its inference figures are those of every
 * model it served meanwhile; a wrapper rollback is a `rollbacks` event of `llmesh-agent@<v>`.
 * Also the node plumbing that turns AgentRelease messages into rollout subjects and picks the
 * version a device's stage admits.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { resolveAgentReleases } from '../../node/rollout/agent-releases.ts'
import { chooseTarget, gatherInputs, releaseStatus, type StoreSnapshot } from '../../node/rollout/plan.ts'
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import { canonicalBytes, sha256Hex } from '../../protocols/encoding.ts'
import {
  activationFor,
  type DecideInput,
  decide,
  inferenceFor,
  runsRelease,
  type VerifiedReport,
  type VerifiedVerdict,
} from '../../protocols/rollout/index.ts'
import type { AgentRelease, DeviceEnrollment, Verdict } from '../../protocols/schemas/index.ts'
import { FLEET, lat, MIN, peer, policy, type ReportSpec, report, T0 } from './rollout-fixtures.ts'

const REL = { model: AGENT_LINEAGE, version: '0.9.1' }
const PREV = { model: AGENT_LINEAGE, version: '0.9.0' }
const N = 6
const enrollments: DeviceEnrollment[] = Array.from({ length: N }, (_, i) => ({
  type: 'DeviceEnrollment',
  v: 1,
  fleet: FLEET,
  device: peer(i),
  tags: i === 0 ? ['pilot'] : [],
  capabilities: { arch: 'x64', ram_mb: 4096, device_type: 'test' },
  issued_at: T0 - MIN,
}))

/** A report of a device serving model `m` 1.0.0 under agent `agent`, with agent events. */
function agentReport(spec: Omit<ReportSpec, 'active'> & { agent: string; agentRollbacks?: string }): VerifiedReport {
  const r = report({ ...spec, active: '1.0.0' }).report
  r.agent = { version: spec.agent }
  if (spec.agentRollbacks !== undefined) {
    const counts = { restarts: 0, ooms: 0, load_failures: 0, probe_failures: 0, rollbacks: 1 }
    r.events.push({ model: AGENT_LINEAGE, version: spec.agentRollbacks, counts })
  }
  return { report: r, digest: sha256Hex(canonicalBytes(r)) }
}

function base(over: Partial<DecideInput> = {}): DecideInput {
  return {
    policy: policy({ exclude_tags: [] }),
    release: REL,
    releasedAt: T0,
    previous: PREV,
    enrollments,
    revocations: [],
    reports: [],
    commands: [],
    verdicts: [],
    now: T0,
    ...over,
  }
}

function sign(draft: NonNullable<ReturnType<typeof decide>['verdictToPublish']>, device = peer(1)): VerifiedVerdict {
  const verdict: Verdict = { type: 'Verdict', v: 1, fleet: FLEET, device, ...draft }
  return { verdict, digest: sha256Hex(canonicalBytes(verdict)) }
}

/** Every device reports each minute, on the agent its stage admits; `slow` devices answer at `ms`. */
function tick(reports: VerifiedReport[], t: number, d: ReturnType<typeof decide>, seq: number, slowMs?: number): void {
  for (const dev of d.devices) {
    const on = activationFor(dev.id, d.view, d.assignment) === 'activate'
    const ms = on && slowMs !== undefined ? slowMs : 100
    reports.push(
      agentReport({ device: dev.id, seq, start: t - MIN, end: t, agent: on ? '0.9.1' : '0.9.0', latencies: lat(ms) }),
    )
  }
}

describe('what a report says about the agent release', () => {
  test('the agent runs when agent.version names it; its figures are every model it served', () => {
    const r = agentReport({ device: peer(1), seq: 1, start: T0, end: T0 + MIN, agent: '0.9.1', latencies: lat(100) })
    assert.equal(runsRelease(r.report, REL), true)
    assert.equal(runsRelease(r.report, PREV), false)
    assert.equal(inferenceFor(r.report, REL).length, 1)
    assert.equal(inferenceFor(r.report, PREV).length, 0)
    // a model release still reads `active` and its own inference entry
    assert.equal(runsRelease(r.report, { model: 'm', version: '1.0.0' }), true)
    assert.equal(runsRelease(r.report, { model: 'm', version: '2.0.0' }), false)
    assert.equal(inferenceFor(r.report, { model: 'other', version: '1.0.0' }).length, 0)
    // an older device's report without the agent field runs no agent release
    delete r.report.agent
    assert.equal(runsRelease(r.report, REL), false)
  })
})

describe('an agent release goes through the stages', () => {
  test('pilot first, then canary, then full; only the admitted devices take it', () => {
    const reports: VerifiedReport[] = []
    const verdicts: VerifiedVerdict[] = []
    let d = decide(base())
    assert.equal(d.status.status, 'pilot')
    const admitted = () => d.devices.filter((x) => activationFor(x.id, d.view, d.assignment) === 'activate')
    assert.deepEqual(
      admitted().map((x) => x.id),
      [peer(0)],
      'the pilot device alone',
    )
    const seen = [d.status.status]
    for (let m = 1; m <= 40 && d.status.phase !== 'promoted'; m++) {
      tick(reports, T0 + m * MIN, d, m)
      d = decide(base({ reports, verdicts, now: T0 + m * MIN }))
      if (d.verdictToPublish) {
        assert.equal(d.verdictToPublish.outcome, 'promote', d.gate?.reasons.join('; '))
        verdicts.push(sign(d.verdictToPublish))
        d = decide(base({ reports, verdicts, now: T0 + m * MIN }))
      }
      if (seen.at(-1) !== d.status.status) seen.push(d.status.status)
      if (d.status.status === 'canary') assert.ok(admitted().length < N, 'the canary leaves devices on 0.9.0')
    }
    assert.deepEqual(seen, ['pilot', 'canary', 'promoted'])
    assert.equal(admitted().length, N)
  })

  test('a pilot that rolled the agent back aborts it for every device; no one outside the pilot is admitted', () => {
    const rel = { model: AGENT_LINEAGE, version: '0.9.2' }
    const b = (over: Partial<DecideInput> = {}) => base({ release: rel, previous: REL, ...over })
    let d = decide(b())
    // the pilot's wrapper put 0.9.1 back: its report runs 0.9.1 and counts a rollback of 0.9.2
    const r = agentReport({
      device: peer(0),
      seq: 1,
      start: T0,
      end: T0 + MIN,
      agent: '0.9.1',
      agentRollbacks: '0.9.2',
    })
    d = decide(b({ reports: [r], now: T0 + MIN }))
    assert.equal(d.verdictToPublish?.outcome, 'abort')
    assert.deepEqual(
      d.verdictToPublish.evidence.map((e) => e.digest),
      [r.digest],
    )
    assert.match(d.gate!.reasons.join('; '), /local rollback/)
    // another node with the report adopts the verdict: aborted; every device's activation is rollback
    const other = decide(b({ reports: [r], verdicts: [sign(d.verdictToPublish, peer(3))], now: T0 + 2 * MIN }))
    assert.equal(other.status.status, 'aborted')
    for (const x of other.devices) assert.equal(activationFor(x.id, other.view, other.assignment), 'rollback')
    // rollout status lists the devices still running the aborted version, with why when they say
    const stuck = agentReport({ device: peer(2), seq: 2, start: T0, end: T0 + 2 * MIN, agent: '0.9.2', latencies: [] })
    stuck.report.agent = { version: '0.9.2', stuck: 'nothing to go back to' }
    const later = agentReport({ device: peer(4), seq: 2, start: T0, end: T0 + 2 * MIN, agent: '0.9.2', latencies: [] })
    const latest = new Map([
      [peer(0), r.report],
      [peer(2), stuck.report],
      [peer(4), later.report],
    ])
    const subject = { ...REL, version: '0.9.2', seq: 3, policy: policy({ exclude_tags: [] }), created_at: T0 }
    const st = releaseStatus({ list: () => [] }, subject, REL, other, latest)
    assert.deepEqual(st.stillRunning, [{ device: peer(2), reason: 'nothing to go back to' }, { device: peer(4) }])
    assert.equal(releaseStatus({ list: () => [] }, subject, REL, d, latest).stillRunning, undefined, 'not aborted')
  })

  test('a slower agent fails its stage against devices still on the previous agent', () => {
    const reports: VerifiedReport[] = []
    let d = decide(base({ commands: [] }))
    let outcome: string | undefined
    for (let m = 1; m <= 30 && outcome === undefined; m++) {
      tick(reports, T0 + m * MIN, d, m, 400)
      d = decide(base({ reports, now: T0 + m * MIN }))
      outcome = d.verdictToPublish?.outcome
    }
    assert.equal(outcome, 'abort')
    assert.match(d.gate!.reasons.join('; '), /latency_p95_ms/)
  })
})

describe('node plumbing of agent releases', () => {
  const packages = [{ arch: 'x64', sha256: 'a'.repeat(64), size: 1000 }]
  const rel = (version: string, seq: number): AgentRelease =>
    ({ type: 'AgentRelease', version, seq, packages, policy: policy(), created_at: T0 + seq }) as AgentRelease

  test('one subject per version (the same packages twice: the lowest seq), named llmesh-agent, in seq order', () => {
    const { releases: out, conflicts } = resolveAgentReleases([
      { message: rel('0.9.2', 3), digest: 'b' },
      { message: rel('0.9.1', 2), digest: 'c' },
      { message: rel('0.9.1', 5), digest: 'a' },
    ])
    assert.deepEqual(
      out.map((x) => [x.manifest.model, x.manifest.version, x.manifest.seq, x.digest]),
      [
        [AGENT_LINEAGE, '0.9.1', 2, 'c'],
        [AGENT_LINEAGE, '0.9.2', 3, 'b'],
      ],
    )
    assert.deepEqual(
      conflicts.map((c) => [c.version, c.outcome, c.chosen]),
      [['0.9.1', 'duplicate', 'c']],
    )
  })

  test('the inputs of an agent release carry no probe set; the admitted version skips aborted ones', () => {
    const [s] = resolveAgentReleases([{ message: rel('0.9.1', 2), digest: 'c' }]).releases
    const snap: StoreSnapshot = { enrollments, revocations: [], reports: [], commands: [], verdicts: [] }
    const input = gatherInputs(snap, s.manifest, PREV, undefined, T0)
    assert.deepEqual(input.release, REL)
    assert.equal(input.probeSet, undefined)
    const cands = [
      { version: '0.9.1', seq: 2, activation: 'activate' as const },
      { version: '0.9.2', seq: 3, activation: 'activate' as const },
      { version: '0.9.3', seq: 4, activation: 'stay' as const },
    ]
    assert.equal(chooseTarget(cands, new Set()), '0.9.2')
    assert.equal(chooseTarget(cands, new Set(['0.9.2'])), '0.9.1')
  })
})
