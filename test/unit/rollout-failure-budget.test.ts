/**
 * Failure budgets with the pure decide(): a stage aborts only when more cohort devices failed
 * (load/probe failure, local rollback, OOM, crash loop) than max(max_devices, ⌊max_pct × cohort / 100⌋);
 * the abort verdict carries the failed devices' reports, and every node re-counts them.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { canonicalBytes, sha256Hex } from '../../protocols/encoding.ts'
import { checkVerdict } from '../../protocols/rollout/check.ts'
import { type DecideInput, decide, type VerifiedVerdict } from '../../protocols/rollout/decide.ts'
import { failureBudget } from '../../protocols/rollout/failures.ts'
import type { VerifiedReport } from '../../protocols/rollout/gates.ts'
import { DEFAULT_POLICY } from '../../protocols/rollout/policy-defaults.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import type { DeviceEnrollment, FailureBudget, RolloutPolicy, Verdict } from '../../protocols/schemas/index.ts'
import { FLEET, lat, MIN, peer, policy, type ReportSpec, report, T0 } from './rollout-fixtures.ts'

const REL = { model: 'm', version: '2.0.0' }

function enroll(n: number): DeviceEnrollment[] {
  return Array.from({ length: n }, (_, i) => ({
    type: 'DeviceEnrollment',
    v: 1,
    fleet: FLEET,
    device: peer(i),
    tags: [],
    capabilities: { arch: 'x64', ram_mb: 4096, device_type: 'test' },
    issued_at: T0 - MIN,
  }))
}

/** One stage holding every device (then `full`), with a failure budget (undefined: none set). */
function budgetPolicy(failures: FailureBudget | undefined): RolloutPolicy {
  const p = policy()
  return {
    ...p,
    stages: [
      { name: 'wide', percent: 100, min_devices: 0, tags: [], window_ms: 10 * MIN },
      { name: 'full', percent: 100, min_devices: 0, tags: [], window_ms: 0 },
    ],
    gates: { ...p.gates, min_reports: 3, failures },
  }
}

/** Every device reports two healthy minutes of the release; `sick` devices add their failure. */
function reports(n: number, sick: Record<number, Partial<ReportSpec>> = {}): VerifiedReport[] {
  const out: VerifiedReport[] = []
  for (let i = 0; i < n; i++) {
    for (let s = 1; s <= 2; s++) {
      const extra = s === 2 ? (sick[i] ?? {}) : {}
      const spec = { device: peer(i), seq: s, start: T0 + (s - 1) * 5 * MIN, end: T0 + s * 5 * MIN, active: '2.0.0' }
      out.push(report({ ...spec, latencies: lat(100, 12), ...extra }))
    }
  }
  return out
}

function input(n: number, failures: FailureBudget | undefined, rs: VerifiedReport[]): DecideInput {
  return {
    policy: budgetPolicy(failures),
    release: REL,
    releasedAt: T0,
    previous: null,
    enrollments: enroll(n),
    revocations: [],
    reports: rs,
    commands: [],
    verdicts: [],
    now: T0 + 10 * MIN,
  }
}

function sign(draft: NonNullable<ReturnType<typeof decide>['verdictToPublish']>, device = peer(1)): VerifiedVerdict {
  const verdict: Verdict = { type: 'Verdict', v: 1, fleet: FLEET, device, ...draft }
  return { verdict, digest: sha256Hex(canonicalBytes(verdict)) }
}

describe('the budget formula: failed > max(max_devices, ⌊max_pct × cohort / 100⌋) aborts', () => {
  const cases: Array<[FailureBudget | undefined, number[]]> = [
    // cohort sizes 1, 5, 100, 1,000
    [undefined, [0, 0, 0, 0]],
    [{ max_devices: 0, max_pct: 0.5 }, [0, 0, 0, 5]],
    [{ max_devices: 0, max_pct: 2 }, [0, 0, 2, 20]],
    [{ max_devices: 1, max_pct: 0 }, [1, 1, 1, 1]],
    [{ max_devices: 3, max_pct: 1 }, [3, 3, 3, 10]],
  ]
  for (const [budget, want] of cases) {
    test(`${JSON.stringify(budget) ?? 'no budget (old policies)'} → ${want.join(', ')}`, () => {
      assert.deepEqual(
        [1, 5, 100, 1000].map((n) => failureBudget(budget, n)),
        want,
      )
    })
  }
  test('the default policy: a 1–5-device pilot or canary aborts on its first failure, 1,000 devices tolerate 5', () => {
    const f = DEFAULT_POLICY.gates.failures
    assert.deepEqual(
      [1, 5, 100, 199, 200, 250, 1000, 1250, 5000].map((n) => failureBudget(f, n)),
      [0, 0, 0, 0, 1, 1, 5, 6, 25],
    )
  })
})

describe('decide() with one failing device out of six', () => {
  const failing = { load_failures: 1, rollbacks: 1 }
  test('max_devices: 0 aborts, with the failed device and its reasons as evidence', () => {
    const d = decide(input(6, { max_devices: 0, max_pct: 0 }, reports(6, { 2: failing })))
    assert.equal(d.verdictToPublish?.outcome, 'abort')
    assert.deepEqual(d.gate?.failures, {
      cohort: 6,
      budget: 0,
      failed: [{ device: peer(2), reasons: ['load failure', 'local rollback'] }],
    })
    const evidenceDevices = new Set(d.verdictToPublish!.evidence.map((e) => e.device))
    assert.deepEqual([...evidenceDevices], [peer(2)])
    assert.deepEqual(
      d.gate?.figures.find((f) => f.gate === 'failed_devices'),
      { gate: 'failed_devices', value: 1, threshold: 0, pass: false },
    )
    assert.match(d.gate!.reasons.join(), /1 of 6 cohort devices failed, budget 0/)
  })

  test('max_devices: 1 does not abort: the stage promotes, the failed device still listed', () => {
    const d = decide(input(6, { max_devices: 1, max_pct: 0 }, reports(6, { 2: failing })))
    assert.equal(d.gate?.outcome, 'pass')
    assert.equal(d.verdictToPublish?.outcome, 'promote')
    assert.deepEqual(d.gate?.failures.failed, [{ device: peer(2), reasons: ['load failure', 'local rollback'] }])
  })

  test('a policy without `failures` keeps its old meaning: one failed device aborts', () => {
    const d = decide(input(6, undefined, reports(6, { 2: failing })))
    assert.equal(d.verdictToPublish?.outcome, 'abort')
  })

  test('an OOM and a crash loop fail a device; a single restart (a kill -9) does not', () => {
    const ok = decide(input(6, { max_devices: 0, max_pct: 0 }, reports(6, { 1: { restarts: 1 } })))
    assert.equal(ok.verdictToPublish?.outcome, 'promote')
    assert.deepEqual(ok.gate?.failures.failed, [])
    const bad = decide(input(6, { max_devices: 1, max_pct: 0 }, reports(6, { 1: { ooms: 1 }, 4: { restarts: 4 } })))
    assert.equal(bad.verdictToPublish?.outcome, 'abort')
    assert.deepEqual(Object.fromEntries(bad.gate!.failures.failed.map((f) => [f.device, f.reasons])), {
      [peer(1)]: ['1 OOM kills (max 0)'],
      [peer(4)]: ['4 restarts within 300000 ms (max 3)'],
    })
  })
})

describe('abort verdicts are re-checked by every node', () => {
  const two = { 1: { load_failures: 1 }, 4: { ooms: 2 } }
  const made = decide(input(6, { max_devices: 1, max_pct: 0 }, reports(6, two)))
  const draft = made.verdictToPublish!
  const byDigest = (rs: VerifiedReport[]) => new Map(rs.map((r) => [r.digest, r]))

  test('two failed devices over a budget of one: the verdict names both, and checks out elsewhere', () => {
    assert.equal(draft.outcome, 'abort')
    assert.deepEqual(new Set(draft.evidence.map((e) => e.device)), new Set([peer(1), peer(4)]))
    const other = decide({ ...input(6, { max_devices: 1, max_pct: 0 }, reports(6, two)), verdicts: [sign(draft)] })
    assert.equal(other.view.aborted, true)
    assert.deepEqual(other.rejected, [])
    // once aborted, the failed devices shown are those the verdict's evidence proves
    assert.deepEqual(other.failures, {
      cohort: 6,
      budget: 1,
      failed: [
        { device: peer(1), reasons: ['load failure'] },
        { device: peer(4), reasons: ['2 OOM kills (max 0)'] },
      ].sort((a, b) => (a.device < b.device ? -1 : 1)),
    })
  })

  test('evidence of only one failed device does not prove an abort when one is tolerated', () => {
    const rs = reports(6, two)
    const cut = { ...draft, evidence: draft.evidence.filter((e) => e.device === peer(1)) }
    const check = checkVerdict(sign(cut).verdict, {
      policy: budgetPolicy({ max_devices: 1, max_pct: 0 }),
      release: REL,
      previous: null,
      devices: enroll(6).map((e) => ({ id: e.device, tags: e.tags })),
      reports: byDigest(rs),
    })
    assert.equal(check.status, 'invalid')
    const dec = decide({ ...input(6, { max_devices: 1, max_pct: 0 }, rs), verdicts: [sign(cut)] })
    assert.equal(dec.view.aborted, false)
    assert.equal(dec.rejected.length, 1)
  })
})

describe('a 1,000-device stage with the default budget (0.5 %)', () => {
  const sick = (k: number) => Object.fromEntries(Array.from({ length: k }, (_, i) => [i * 97, { rollbacks: 1 }]))
  test('tolerates 5 failed devices and aborts on the 6th', () => {
    const f = DEFAULT_POLICY.gates.failures
    const five = decide(input(1000, f, reports(1000, sick(5))))
    assert.equal(five.gate?.failures.budget, 5)
    assert.equal(five.gate?.failures.failed.length, 5)
    assert.equal(five.verdictToPublish?.outcome, 'promote')
    const six = decide(input(1000, f, reports(1000, sick(6))))
    assert.equal(six.verdictToPublish?.outcome, 'abort')
    assert.equal(new Set(six.verdictToPublish!.evidence.map((e) => e.device)).size, 6)
  })
})

describe('policy YAML', () => {
  const yaml = (gates: string) => `stages:\n  - { name: full, percent: 100 }\ngates:\n  min_reports: 1\n${gates}`
  test('gates.failures is parsed; its fields default to 0; absent stays absent', () => {
    assert.deepEqual(parsePolicyYaml(yaml('  failures: { max_devices: 2, max_pct: 1.5 }\n')).gates.failures, {
      max_devices: 2,
      max_pct: 1.5,
    })
    assert.deepEqual(parsePolicyYaml(yaml('  failures: { max_pct: 2 }\n')).gates.failures, {
      max_devices: 0,
      max_pct: 2,
    })
    assert.equal(parsePolicyYaml(yaml('')).gates.failures, undefined)
  })
  test('unknown keys and out-of-range values are refused with their line', () => {
    assert.throws(
      () => parsePolicyYaml(yaml('  failures:\n    max: 1\n')),
      /policy.yaml:6: gates.failures.max: unknown key/,
    )
    assert.throws(
      () => parsePolicyYaml(yaml('  failures: { max_pct: 101 }\n')),
      /gates.failures.max_pct: must be <= 100/,
    )
    assert.throws(() => parsePolicyYaml(yaml('  failures: { max_devices: -1 }\n')), /gates.failures.max_devices/)
    assert.throws(() => parsePolicyYaml(yaml('  failures: { max_devices: 1.5 }\n')), /gates.failures.max_devices/)
  })
})
