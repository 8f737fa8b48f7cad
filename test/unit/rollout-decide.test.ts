import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { canonicalBytes, sha256Hex } from '../../protocols/encoding.ts'
import { checkVerdict } from '../../protocols/rollout/check.ts'
import {
  activationFor,
  activeDevices,
  type DecideInput,
  decide,
  type VerifiedVerdict,
} from '../../protocols/rollout/decide.ts'
import type { VerifiedReport } from '../../protocols/rollout/gates.ts'
import type { DeviceEnrollment, OperatorCommand, Verdict } from '../../protocols/schemas/index.ts'
import { FLEET, lat, MIN, peer, policy, report, T0 } from './rollout-fixtures.ts'

const REL = { model: 'm', version: '2.0.0' }
const PREV = { model: 'm', version: '1.0.0' }
const N = 10
const enrollments: DeviceEnrollment[] = Array.from({ length: N }, (_, i) => ({
  type: 'DeviceEnrollment',
  v: 1,
  fleet: FLEET,
  device: peer(i),
  tags: i === 0 ? ['pilot'] : i === 9 ? ['low-ram'] : [],
  capabilities: { arch: 'x64', ram_mb: 4096, device_type: 'test' },
  issued_at: T0 - MIN,
}))
const P = policy({ gates: { ...policy().gates, min_reports: 2 } })

function sign(draft: NonNullable<ReturnType<typeof decide>['verdictToPublish']>, device = peer(1)): VerifiedVerdict {
  const verdict: Verdict = { type: 'Verdict', v: 1, fleet: FLEET, device, ...draft }
  return { verdict, digest: sha256Hex(canonicalBytes(verdict)) }
}

function base(over: Partial<DecideInput> = {}): DecideInput {
  return {
    policy: P,
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

/** Every device reports each minute, running the release when its stage is active. */
function tick(
  reports: VerifiedReport[],
  t: number,
  decision: ReturnType<typeof decide>,
  seq: number,
  sick?: string,
): void {
  for (const d of decision.devices) {
    const act = activationFor(d.id, decision.view, decision.assignment)
    const version = act === 'activate' ? '2.0.0' : '1.0.0'
    reports.push(
      report({
        device: d.id,
        seq,
        start: t - MIN,
        end: t,
        active: version,
        latencies: lat(100),
        restarts: d.id === sick && version === '2.0.0' ? 5 : 0,
      }),
    )
  }
}

describe('decide', () => {
  test('activeDevices drops revoked and expired devices and keeps the latest enrollment', () => {
    const later = { ...enrollments[1], tags: ['pilot'], issued_at: T0 }
    const expired = { ...enrollments[2], issued_at: T0, expires_at: T0 }
    const rev = {
      type: 'Revocation' as const,
      v: 1 as const,
      fleet: FLEET,
      device: peer(3),
      issued_at: T0,
      reason: 'x',
    }
    const ds = activeDevices([...enrollments, later, expired], [rev], T0 + 1)
    assert.equal(ds.length, N - 2)
    assert.deepEqual(ds.find((d) => d.id === peer(1))!.tags, ['pilot'])
    assert.ok(!ds.some((d) => d.id === peer(3) || d.id === peer(2)))
  })

  test('a healthy release walks every stage to promoted, one verdict per stage', () => {
    const reports: VerifiedReport[] = []
    const verdicts: VerifiedVerdict[] = []
    let d = decide(base())
    const seen: string[] = [d.status.status]
    for (let m = 1; m <= 40 && d.status.phase !== 'promoted'; m++) {
      tick(reports, T0 + m * MIN, d, m)
      d = decide(base({ reports, verdicts, now: T0 + m * MIN }))
      if (d.verdictToPublish) {
        assert.equal(d.verdictToPublish.outcome, 'promote')
        verdicts.push(sign(d.verdictToPublish))
        d = decide(base({ reports, verdicts, now: T0 + m * MIN }))
        assert.equal(d.verdictToPublish, undefined, 'never re-issued')
      }
      if (seen.at(-1) !== d.status.status) seen.push(d.status.status)
    }
    assert.deepEqual(seen, ['pilot', 'canary', 'promoted'])
    assert.equal(verdicts.length, 2)
    assert.equal(activationFor(peer(9), d.view, d.assignment), 'stay', 'excluded device never activates')
    assert.equal(activationFor(peer(5), d.view, d.assignment), 'activate')
  })

  test('a crash loop in the canary aborts with evidence; every node adopts it; devices roll back', () => {
    const reports: VerifiedReport[] = []
    const verdicts: VerifiedVerdict[] = []
    let d = decide(base({ commands: [cmd('promote', T0)] }))
    assert.equal(d.status.status, 'canary')
    const sick = [...d.assignment].find(([, k]) => k === 1)![0]
    tick(reports, T0 + MIN, d, 1, sick)
    d = decide(base({ reports, commands: [cmd('promote', T0)], now: T0 + MIN }))
    assert.equal(d.verdictToPublish?.outcome, 'abort')
    assert.ok(d.verdictToPublish!.evidence.every((e) => e.device === sick))
    const v = sign(d.verdictToPublish!, peer(4))
    verdicts.push(v)
    // Another node that has the reports adopts it; one without them holds it pending.
    const other = decide(base({ reports, verdicts, commands: [cmd('promote', T0)], now: T0 + 2 * MIN }))
    assert.equal(other.status.status, 'aborted')
    assert.equal(activationFor(peer(5), other.view, other.assignment), 'rollback')
    const blind = decide(base({ verdicts, commands: [cmd('promote', T0)], now: T0 + 2 * MIN }))
    assert.equal(blind.status.status, 'canary')
    assert.deepEqual(blind.pending[0].missing.sort(), v.verdict.evidence.map((e) => e.digest).sort())
  })

  test('pause holds a passing gate; resume lets it go on', () => {
    const reports: VerifiedReport[] = []
    let d = decide(base())
    for (let m = 1; m <= 12; m++) tick(reports, T0 + m * MIN, d, m)
    const pause = cmd('pause', T0 + 5 * MIN)
    d = decide(base({ reports, commands: [pause], now: T0 + 12 * MIN }))
    assert.equal(d.gate?.outcome, 'pass')
    assert.equal(d.verdictToPublish, undefined)
    assert.equal(d.status.status, 'paused')
    d = decide(base({ reports, commands: [pause, cmd('resume', T0 + 12 * MIN, 'b')], now: T0 + 12 * MIN }))
    assert.equal(d.verdictToPublish?.outcome, 'promote')
  })

  test('checkVerdict: forged, unsupported and minority verdicts are rejected', () => {
    const reports: VerifiedReport[] = []
    let d = decide(base())
    for (let m = 1; m <= 12; m++) tick(reports, T0 + m * MIN, d, m)
    d = decide(base({ reports, now: T0 + 12 * MIN }))
    const good = sign(d.verdictToPublish!)
    const input = {
      policy: P,
      release: REL,
      previous: PREV,
      devices: d.devices,
      reports: new Map(reports.map((r) => [r.digest, r])),
    }
    assert.equal(checkVerdict(good.verdict, input).status, 'valid')
    // Issuer not enrolled.
    assert.equal(checkVerdict({ ...good.verdict, device: peer(77) }, input).status, 'invalid')
    // Promote claimed as abort.
    assert.equal(checkVerdict({ ...good.verdict, outcome: 'abort' }, input).status, 'invalid')
    // A partitioned minority with one device's reports cannot promote when two are required.
    const strict = policy({ gates: { ...P.gates, min_reports: 3 } })
    const few = decide(
      base({ policy: strict, reports: reports.filter((r) => r.report.device === peer(0)), now: T0 + 12 * MIN }),
    )
    assert.equal(few.verdictToPublish, undefined)
    const forged = { ...good.verdict, evidence: good.verdict.evidence.filter((e) => e.device === peer(0)) }
    const c = checkVerdict(forged, { ...input, policy: strict })
    assert.equal(c.status, 'invalid')
    // Window shorter than the stage's observation window.
    const short = { ...good.verdict, window: { start: T0 + 8 * MIN, end: T0 + 12 * MIN } }
    assert.equal(checkVerdict(short, input).status, 'invalid')
    // Evidence mislabeled.
    const e0 = good.verdict.evidence[0]
    const lab = { ...good.verdict, evidence: [{ ...e0, seq: e0.seq + 100 }, ...good.verdict.evidence.slice(1)] }
    assert.equal(checkVerdict(lab, input).status, 'invalid')
  })

  test('one-stage policy with min_reports 0 activates everywhere at once', () => {
    const one = policy({
      stages: [{ name: 'all', percent: 100, min_devices: 0, tags: [], window_ms: 1000 }],
      gates: { ...P.gates, min_reports: 0 },
    })
    const d = decide(base({ policy: one }))
    assert.equal(d.status.status, 'promoted')
    assert.equal(activationFor(peer(4), d.view, d.assignment), 'activate')
    assert.equal(activationFor(peer(9), d.view, d.assignment), 'stay')
  })
})

function cmd(action: OperatorCommand['action'], t: number, id = 'a'): OperatorCommand {
  return {
    type: 'OperatorCommand',
    v: 1,
    fleet: FLEET,
    action,
    model: 'm',
    version: '2.0.0',
    id: `${action.length}${id}`.padEnd(16, '0').replace(/[^0-9a-f]/g, 'f'),
    issued_at: t,
  }
}
