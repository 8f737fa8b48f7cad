import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { checkVerdict } from '../../protocols/rollout/check.ts'
import { assignStages } from '../../protocols/rollout/cohorts.ts'
import { evaluateStage, type StageEvalInput } from '../../protocols/rollout/gates.ts'
import { judgeQuality, qualityOf } from '../../protocols/rollout/quality-gate.ts'
import type { QualityFigure, Verdict } from '../../protocols/schemas/index.ts'
import { FLEET, lat, MIN, peer, policy, report, T0 } from './rollout-fixtures.ts'

const REL = { model: 'm', version: '2.0.0' }
const PREV = { model: 'm', version: '1.0.0' }
const SET = 'a'.repeat(64)
const devices = Array.from({ length: 10 }, (_, i) => ({ id: peer(i), tags: i === 0 ? ['pilot'] : [] }))
const P = policy({
  gates: { ...policy().gates, quality: { min_agreement: 0.8, max_perplexity_regression_pct: 10, min_devices: 1 } },
})
const A = assignStages(P, REL, devices)
const cohort = devices.filter((d) => A.get(d.id) !== null && A.get(d.id)! <= 1).map((d) => d.id)
const outside = devices.filter((d) => A.get(d.id) === 2).map((d) => d.id)

/** Figures of one pass: `tokens` reference tokens, `agreement` share agreed, perplexity `ppl`. */
function fig(version: string, agreement: number, ppl: number, tokens = 100, set = SET): QualityFigure {
  return {
    model: 'm',
    version,
    probe_set: set,
    probes: 4,
    tokens,
    agreed: Math.round(agreement * tokens),
    nll: Math.log(ppl) * tokens,
  }
}

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
    probeSet: SET,
    ...over,
  }
}

/** A report of one device in the stage window: healthy inference figures, quality figures as given. */
const rep = (device: string, active: string, quality?: QualityFigure[]) =>
  report({ device, seq: 1, start: T0 + MIN, end: T0 + 2 * MIN, active, latencies: lat(100), quality })

/** The cohort on the candidate, the devices outside on the previous version. */
function fleet(cand: QualityFigure[] | undefined, base: QualityFigure[] | undefined) {
  return [...cohort.map((id) => rep(id, '2.0.0', cand)), ...outside.map((id) => rep(id, '1.0.0', base))]
}

describe('quality gate', () => {
  test('a candidate as good as the baseline passes, its figures named and the baseline reports in the evidence', () => {
    const rs = fleet([fig('2.0.0', 0.97, 50)], [fig('1.0.0', 1, 48, 100)])
    const r = evaluateStage(input({ reports: rs }))
    assert.equal(r.outcome, 'pass', r.reasons.join('; '))
    const ag = r.figures.find((f) => f.gate === 'quality.agreement')
    assert.deepEqual([ag?.value, ag?.threshold, ag?.pass], [0.97, 0.8, true])
    const pp = r.figures.find((f) => f.gate === 'quality.perplexity.regression')
    assert.ok(pp && Math.abs(pp.baseline! - 48) < 1e-3 && Math.abs(pp.value! - 50) < 1e-3 && pp.pass)
    assert.equal(r.evidence.length, rs.length)
  })

  test('low agreement aborts by itself (latency and errors healthy), the evidence being the figure reports', () => {
    const rs = fleet([fig('2.0.0', 0.1, 49)], [fig('1.0.0', 1, 48)])
    const r = evaluateStage(input({ reports: rs, now: T0 + 3 * MIN }))
    assert.equal(r.outcome, 'fail')
    assert.match(r.reasons.join('; '), /quality\.agreement 0\.1 < 0\.8/)
    assert.deepEqual(
      r.reasons.filter((x) => !x.startsWith('quality')),
      [],
    )
    const cand = new Set(rs.filter((x) => x.report.active[0].version === '2.0.0').map((x) => x.digest))
    assert.deepEqual(new Set(r.evidence.map((e) => e.digest)), cand)
    // every node re-judges the abort from its evidence alone
    const verdict: Verdict = {
      type: 'Verdict',
      v: 1,
      fleet: FLEET,
      device: cohort[0],
      model: 'm',
      version: '2.0.0',
      stage: 1,
      outcome: 'abort',
      decided_at: T0 + 3 * MIN,
      window: { start: T0, end: T0 + 3 * MIN },
      evidence: r.evidence,
      figures: r.figures,
    }
    const reports = new Map(rs.map((x) => [x.digest, x]))
    const ok = checkVerdict(verdict, { policy: P, release: REL, previous: PREV, devices, reports, probeSet: SET })
    assert.equal(ok.status, 'valid')
    // and without the probe set the same evidence proves nothing
    const no = checkVerdict(verdict, { policy: P, release: REL, previous: PREV, devices, reports })
    assert.equal(no.status, 'invalid')
  })

  test('a perplexity regression over the allowance aborts, with baseline and candidate reports as evidence', () => {
    const rs = fleet([fig('2.0.0', 0.95, 60)], [fig('1.0.0', 1, 48)])
    const r = evaluateStage(input({ reports: rs }))
    assert.equal(r.outcome, 'fail')
    const pp = r.figures.find((f) => f.gate === 'quality.perplexity.regression')!
    assert.ok(Math.abs(pp.threshold! - 52.8) < 1e-3 && !pp.pass)
    assert.equal(r.evidence.length, rs.length)
  })

  test('inconclusive holds: no figures, too few devices, no baseline while devices remain outside, no probe set', () => {
    const none = evaluateStage(input({ reports: fleet(undefined, [fig('1.0.0', 1, 48)]) }))
    assert.equal(none.outcome, 'inconclusive')
    assert.match(none.reasons.join(';'), /quality: 0 of 1 devices/)
    const many = policy({ gates: { ...P.gates, quality: { ...P.gates.quality!, min_devices: 50 } } })
    const partial = fleet(undefined, [fig('1.0.0', 1, 48)])
    partial[0] = rep(cohort[0], '2.0.0', [fig('2.0.0', 1, 48)])
    const few = evaluateStage(input({ policy: many, reports: partial }))
    assert.ok(cohort.length > 1)
    assert.equal(few.outcome, 'inconclusive', 'min_devices (bounded by the cohort size) were not reached')
    assert.equal(evaluateStage(input({ reports: partial })).outcome, 'pass', 'one device is enough by default')
    const nobase = evaluateStage(input({ reports: fleet([fig('2.0.0', 1, 48)], undefined) }))
    assert.equal(nobase.outcome, 'inconclusive')
    assert.match(nobase.reasons.join(';'), /no device on the previous version/)
    const otherSet = evaluateStage(input({ reports: fleet([fig('2.0.0', 1, 48, 100, 'b'.repeat(64))], undefined) }))
    assert.equal(otherSet.outcome, 'inconclusive', 'figures of another probe set do not count')
    const noSet = evaluateStage(
      input({ probeSet: undefined, reports: fleet([fig('2.0.0', 1, 48)], [fig('1.0.0', 1, 48)]) }),
    )
    assert.equal(noSet.outcome, 'inconclusive')
    assert.match(noSet.reasons.join(';'), /no probe set/)
  })

  test('the last stage (no device outside) or a first release judge agreement alone', () => {
    const first = evaluateStage(input({ previous: null, reports: fleet([fig('2.0.0', 0.9, 400)], undefined) }))
    assert.equal(first.outcome, 'pass', first.reasons.join('; '))
    assert.equal(
      first.figures.find((f) => f.gate === 'quality.perplexity.regression'),
      undefined,
    )
  })

  test('a device counts once, with its latest figures', () => {
    const id = cohort[0]
    const r1 = report({
      device: id,
      seq: 1,
      start: T0,
      end: T0 + MIN,
      active: '2.0.0',
      quality: [fig('2.0.0', 0.1, 48)],
    })
    const r2 = report({
      device: id,
      seq: 2,
      start: T0 + MIN,
      end: T0 + 2 * MIN,
      active: '2.0.0',
      quality: [fig('2.0.0', 0.9, 48)],
    })
    const j = judgeQuality({
      gate: { min_agreement: 0.8, min_devices: 1 },
      probeSet: SET,
      release: REL,
      previous: null,
      candidates: [{ id, reports: [r1, r2] }],
      baseline: [],
      cohort: 1,
      needBaseline: false,
    })
    assert.equal(j.failed.length, 0)
    assert.deepEqual(j.used, [r2])
  })

  test('property: the gate fails exactly when pooled agreement is below the threshold', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ tokens: fc.integer({ min: 1, max: 2048 }), share: fc.double({ min: 0, max: 1, noNaN: true }) }),
          {
            minLength: 1,
            maxLength: 12,
          },
        ),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (devs, min) => {
          const candidates = devs.map((d, i) => ({
            id: peer(i),
            reports: [
              report({
                device: peer(i),
                seq: 1,
                start: T0,
                end: T0 + MIN,
                active: '2.0.0',
                quality: [{ ...fig('2.0.0', 0, 2, d.tokens), agreed: Math.floor(d.share * d.tokens) }],
              }),
            ],
          }))
          const j = judgeQuality({
            gate: { min_agreement: min, min_devices: 1 },
            probeSet: SET,
            release: REL,
            previous: null,
            candidates,
            baseline: [],
            cohort: devs.length,
            needBaseline: false,
          })
          const tokens = devs.reduce((n, d) => n + d.tokens, 0)
          const agreed = devs.reduce((n, d) => n + Math.floor(d.share * d.tokens), 0)
          assert.equal(j.failed.length > 0, agreed / tokens < min)
          assert.equal(j.inconclusive, false)
          const q = qualityOf({ tokens, agreed, nll: Math.log(2) * tokens })
          assert.ok(Math.abs(q.perplexity! - 2) < 1e-9)
        },
      ),
      { numRuns: 300 },
    )
  })
})
