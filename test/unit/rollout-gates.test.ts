import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { assignStages } from '../../protocols/rollout/cohorts.ts'
import { evaluateStage, type StageEvalInput } from '../../protocols/rollout/gates.ts'
import { lat, MIN, peer, policy, report, T0 } from './rollout-fixtures.ts'

const REL = { model: 'm', version: '2.0.0' }
const PREV = { model: 'm', version: '1.0.0' }
const devices = Array.from({ length: 10 }, (_, i) => ({ id: peer(i), tags: i === 0 ? ['pilot'] : [] }))
const P = policy()
const A = assignStages(P, REL, devices)
const canary = devices.filter((d) => A.get(d.id) === 1).map((d) => d.id)
const outside = devices.filter((d) => A.get(d.id) === 2).map((d) => d.id)

function input(over: Partial<StageEvalInput>): StageEvalInput {
  return {
    policy: P,
    stage: 1,
    release: REL,
    previous: PREV,
    devices,
    reports: [],
    stageStartedAt: T0,
    now: T0 + 11 * MIN,
    ...over,
  }
}

/** Healthy candidate reports from the pilot and canary devices, and baseline reports from the rest. */
function fleetReports(candMs = 100, baseMs = 100) {
  const rs = []
  for (const id of [peer(0), ...canary]) {
    rs.push(report({ device: id, seq: 1, start: T0 + MIN, end: T0 + 2 * MIN, active: '2.0.0', latencies: lat(candMs) }))
  }
  for (const id of outside) {
    rs.push(report({ device: id, seq: 1, start: T0 + MIN, end: T0 + 2 * MIN, active: '1.0.0', latencies: lat(baseMs) }))
  }
  return rs
}

describe('gates', () => {
  test('the fixture fleet has a canary and devices outside it', () => {
    assert.ok(canary.length >= 1)
    assert.ok(outside.length >= 3)
  })

  test('healthy candidate passes after the window, with its reports as evidence', () => {
    const rs = fleetReports()
    const r = evaluateStage(input({ reports: rs }))
    assert.equal(r.outcome, 'pass', r.reasons.join('; '))
    assert.equal(r.evidence.length, rs.length)
    assert.equal(r.reporters, canary.length + 1)
    assert.ok(r.figures.some((f) => f.gate === 'latency_p95_ms.regression' && f.baseline !== null))
  })

  test('before the window ends: inconclusive, never pass', () => {
    const r = evaluateStage(input({ reports: fleetReports(), now: T0 + 5 * MIN }))
    assert.equal(r.outcome, 'inconclusive')
    assert.equal(r.evidence.length, 0)
  })

  test('too few reporting devices: inconclusive', () => {
    const rs = fleetReports().filter((r) => r.report.device !== canary[0])
    const r = evaluateStage(input({ reports: rs, policy: policy({ gates: { ...P.gates, min_reports: 5 } }) }))
    assert.equal(r.required, Math.min(5, canary.length + 1))
    assert.equal(r.outcome, 'inconclusive')
    assert.match(r.reasons.join(), /required devices reported/)
  })

  test('relative latency regression fails even under the absolute max', () => {
    const r = evaluateStage(input({ reports: fleetReports(300, 100) }))
    assert.equal(r.outcome, 'fail')
    assert.ok(r.evidence.length > 0)
    assert.ok(r.figures.some((f) => f.gate === 'latency_p95_ms.regression' && !f.pass))
  })

  test('first release (no previous): absolute gates only', () => {
    const rs = fleetReports(300, 100)
    assert.equal(evaluateStage(input({ reports: rs, previous: null })).outcome, 'pass')
    assert.equal(evaluateStage(input({ reports: fleetReports(900), previous: null })).outcome, 'fail')
  })

  test('missing baseline while devices remain outside the cohort: inconclusive', () => {
    const rs = fleetReports().filter((r) => r.report.active[0].version === '2.0.0')
    assert.equal(evaluateStage(input({ reports: rs })).outcome, 'inconclusive')
    // Last stage: every eligible device is in the cohort, so no baseline is required.
    const all = devices.map((d) =>
      report({ device: d.id, seq: 1, start: T0 + MIN, end: T0 + 2 * MIN, active: '2.0.0', latencies: lat(100) }),
    )
    assert.equal(evaluateStage(input({ reports: all, stage: 2 })).outcome, 'pass')
  })

  test('a crash loop fails fast, before the window ends, with the crashing reports as evidence', () => {
    const id = canary[0]
    const crash = [1, 2].map((seq) =>
      report({ device: id, seq, start: T0 + seq * MIN, end: T0 + (seq + 0.5) * MIN, active: '2.0.0', restarts: 2 }),
    )
    const r = evaluateStage(input({ reports: [...fleetReports(), ...crash], now: T0 + 3 * MIN }))
    assert.equal(r.outcome, 'fail')
    assert.deepEqual(r.evidence.map((e) => e.digest).sort(), crash.map((c) => c.digest).sort())
    // Restarts spread wider than per_ms do not add up.
    const slow = [1, 7].map((seq) =>
      report({ device: id, seq, start: T0 + seq * MIN, end: T0 + (seq + 0.5) * MIN, active: '2.0.0', restarts: 2 }),
    )
    assert.notEqual(evaluateStage(input({ reports: [...fleetReports(), ...slow], now: T0 + 9 * MIN })).outcome, 'fail')
  })

  test('OOM and load failures of the candidate fail', () => {
    const oom = report({ device: canary[0], seq: 2, start: T0 + MIN, end: T0 + 2 * MIN, active: '2.0.0', ooms: 1 })
    assert.equal(evaluateStage(input({ reports: [oom] })).outcome, 'fail')
    const lf = report({
      device: canary[0],
      seq: 2,
      start: T0 + MIN,
      end: T0 + 2 * MIN,
      active: '2.0.0',
      load_failures: 1,
    })
    assert.equal(evaluateStage(input({ reports: [lf] })).outcome, 'fail')
  })

  test('forged: unenrolled, out-of-cohort and out-of-window reports change nothing', () => {
    const base = fleetReports()
    const expected = evaluateStage(input({ reports: base }))
    const forged = [
      report({ device: peer(999), seq: 1, start: T0 + MIN, end: T0 + 2 * MIN, active: '2.0.0', ooms: 5 }),
      report({ device: outside[0], seq: 0, start: T0, end: T0 + MIN, active: '2.0.0', restarts: 50 }),
      report({ device: canary[0], seq: 0, start: T0 - 5 * MIN, end: T0 - MIN, active: '2.0.0', ooms: 3 }),
      report({ device: canary[0], seq: 7, start: T0 + MIN, end: T0 + 20 * MIN, active: '2.0.0', ooms: 3 }),
    ]
    const r = evaluateStage(input({ reports: [...base, ...forged, ...base] }))
    assert.deepEqual(r, expected)
  })

  test("a device's figures fold all its reports in the window: small per-interval reports add up", () => {
    // Four reports of 4 requests each: no single report reaches GATE_MIN_REQUESTS, together they do,
    // and a slow interval early in the window still shows in the merged p95.
    const one = [1, 2, 3, 4].map((seq) =>
      report({
        device: canary[0],
        seq,
        start: T0 + seq * MIN,
        end: T0 + (seq + 0.5) * MIN,
        active: '2.0.0',
        latencies: seq === 1 ? [5000, 5000, 5000, 5000] : [100, 100, 100, 100],
      }),
    )
    const strict = policy({ gates: { ...P.gates, min_reports: 1, latency_p95_ms: { max: 1000 } } })
    const r = evaluateStage(input({ reports: one, previous: null, policy: strict }))
    const fig = r.figures.find((f) => f.gate === 'latency_p95_ms.max')
    assert.ok(fig !== undefined && fig.value !== null && fig.value > 4000, `p95 ${fig?.value}`)
    assert.equal(r.outcome, 'fail')
    assert.equal(r.evidence.length, 4)
  })

  test('stale votes make no quorum: a device whose latest report is older than vote_max_age does not count', () => {
    const fresh = (seq: number, end: number) =>
      report({ device: canary[0], seq, start: end - MIN / 2, end, active: '2.0.0', latencies: lat(100) })
    const now = T0 + 30 * MIN
    const strict = policy({ gates: { ...P.gates, min_reports: 1, vote_max_age_ms: 2 * MIN } })
    const stale = evaluateStage(input({ reports: [fresh(1, T0 + 5 * MIN)], previous: null, policy: strict, now }))
    assert.equal(stale.reporters, 0)
    assert.equal(stale.outcome, 'inconclusive')
    const live = evaluateStage(input({ reports: [fresh(1, now - MIN)], previous: null, policy: strict, now }))
    assert.equal(live.reporters, 1)
    assert.equal(live.outcome, 'pass')
  })

  test('one device one vote: replays and many reports from one device count once', () => {
    const one = [1, 2, 3].map((seq) =>
      report({
        device: canary[0],
        seq,
        start: T0 + seq * MIN,
        end: T0 + (seq + 0.5) * MIN,
        active: '2.0.0',
        latencies: lat(100),
      }),
    )
    const r = evaluateStage(
      input({ reports: [...one, ...one], previous: null, policy: policy({ gates: { ...P.gates, min_reports: 2 } }) }),
    )
    assert.equal(r.reporters, 1)
    assert.equal(r.outcome, 'inconclusive')
  })

  test('one-stage policy with min_reports 0 passes after its window with no reports', () => {
    const one = policy({
      stages: [{ name: 'all', percent: 100, min_devices: 0, tags: [], window_ms: 1000 }],
      gates: { ...P.gates, min_reports: 0 },
    })
    const r = evaluateStage(input({ policy: one, stage: 0, now: T0 + 1000 }))
    assert.equal(r.outcome, 'pass', r.reasons.join('; '))
    assert.equal(evaluateStage(input({ policy: one, stage: 0, now: T0 + 999 })).outcome, 'inconclusive')
  })
})
