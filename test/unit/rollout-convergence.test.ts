import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { canonicalBytes, canonicalJson, sha256Hex } from '../../protocols/encoding.ts'
import { activationFor, type DecideInput, decide, type VerifiedVerdict } from '../../protocols/rollout/decide.ts'
import type { VerifiedReport } from '../../protocols/rollout/gates.ts'
import type { DeviceEnrollment, OperatorCommand, Verdict } from '../../protocols/schemas/index.ts'
import { FLEET, lat, MIN, peer, policy, report, T0 } from './rollout-fixtures.ts'

const REL = { model: 'm', version: '2.0.0' }
const PREV = { model: 'm', version: '1.0.0' }
const N = 12
const enrollments: DeviceEnrollment[] = Array.from({ length: N }, (_, i) => ({
  type: 'DeviceEnrollment',
  v: 1,
  fleet: FLEET,
  device: peer(i),
  tags: i < 3 ? ['pilot'] : [],
  capabilities: { arch: 'x64', ram_mb: 4096, device_type: 'test' },
  issued_at: T0 - MIN,
}))
const P = policy({ gates: { ...policy().gates, min_reports: 3 } })
const base = (over: Partial<DecideInput>): DecideInput => ({
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
})
const sign = (d: NonNullable<ReturnType<typeof decide>['verdictToPublish']>, device: string): VerifiedVerdict => {
  const verdict: Verdict = { type: 'Verdict', v: 1, fleet: FLEET, device, ...d }
  return { verdict, digest: sha256Hex(canonicalBytes(verdict)) }
}

/** Runs a healthy fleet where every device sees every report (a full history of messages). */
function history(minutes: number, sick?: string) {
  const reports: VerifiedReport[] = []
  const verdicts: VerifiedVerdict[] = []
  const commands: OperatorCommand[] = [
    {
      type: 'OperatorCommand',
      v: 1,
      fleet: FLEET,
      action: 'pause',
      model: 'm',
      version: '2.0.0',
      id: 'a'.repeat(16),
      issued_at: T0 + 3 * MIN,
    },
    {
      type: 'OperatorCommand',
      v: 1,
      fleet: FLEET,
      action: 'resume',
      model: 'm',
      version: '2.0.0',
      id: 'b'.repeat(16),
      issued_at: T0 + 6 * MIN,
    },
  ]
  let d = decide(base({ commands }))
  for (let m = 1; m <= minutes; m++) {
    for (const dev of d.devices) {
      const v = activationFor(dev.id, d.view, d.assignment) === 'activate' ? '2.0.0' : '1.0.0'
      reports.push(
        report({
          device: dev.id,
          seq: m,
          start: T0 + (m - 1) * MIN,
          end: T0 + m * MIN,
          active: v,
          latencies: lat(100),
          restarts: dev.id === sick && v === '2.0.0' ? 9 : 0,
        }),
      )
    }
    d = decide(base({ reports, verdicts, commands, now: T0 + m * MIN }))
    if (d.verdictToPublish) verdicts.push(sign(d.verdictToPublish, peer(m % N)))
  }
  return { reports, verdicts, commands, end: T0 + minutes * MIN }
}

describe('rollout convergence', () => {
  const healthy = history(30)
  const sick = history(30, peer(5))

  test('the histories reach promoted and aborted', () => {
    const a = decide(base({ ...healthy, now: healthy.end }))
    assert.equal(a.status.status, 'promoted')
    const b = decide(base({ ...sick, now: sick.end }))
    assert.ok(['aborted'].includes(b.status.status), b.status.status)
  })

  test('replicas given the same messages in any order, with duplicates, decide the same', () => {
    for (const h of [healthy, sick]) {
      const expected = decide(base({ ...h, now: h.end }))
      fc.assert(
        fc.property(fc.integer(), fc.nat(20), (seed, dup) => {
          const shuffle = <T>(xs: T[]) =>
            xs
              .map((x, i) => ({ x, k: Math.sin(seed + i * 12.9898) }))
              .sort((p, q) => p.k - q.k)
              .map((p) => p.x)
          const d = decide(
            base({
              reports: shuffle([...h.reports, ...h.reports.slice(0, dup)]),
              verdicts: shuffle([...h.verdicts, ...h.verdicts.slice(0, 1)]),
              commands: shuffle([...h.commands]),
              now: h.end,
            }),
          )
          assert.equal(canonicalJson(d.state), canonicalJson(expected.state))
          assert.deepEqual(d.status, expected.status)
        }),
        { numRuns: 30 },
      )
    }
  })

  test('delayed delivery: a replica that learns verdicts late, in pieces, ends in the same state', () => {
    const expected = decide(base({ ...healthy, now: healthy.end }))
    let state = decide(base({ now: healthy.end })).state
    for (const v of [...healthy.verdicts].reverse()) {
      state = decide(base({ ...healthy, verdicts: [v], state, now: healthy.end })).state
    }
    state = decide(base({ ...healthy, verdicts: [], state, now: healthy.end })).state
    assert.equal(canonicalJson(state), canonicalJson(expected.state))
  })

  test('partition: a side without its quorum holds; after healing both sides agree', () => {
    // Pilot stage: 3 pilot devices, min_reports 3. The minority side lost device 2's reports.
    const reports: VerifiedReport[] = []
    for (let m = 1; m <= 12; m++) {
      for (let i = 0; i < N; i++) {
        const v = i < 3 ? '2.0.0' : '1.0.0'
        reports.push(
          report({
            device: peer(i),
            seq: m,
            start: T0 + (m - 1) * MIN,
            end: T0 + m * MIN,
            active: v,
            latencies: lat(100),
          }),
        )
      }
    }
    const now = T0 + 12 * MIN
    const minorityReports = reports.filter((r) => r.report.device !== peer(2))
    const minority = decide(base({ reports: minorityReports, now }))
    assert.equal(minority.gate?.outcome, 'inconclusive')
    assert.equal(minority.verdictToPublish, undefined)
    const majority = decide(base({ reports, now }))
    assert.equal(majority.verdictToPublish?.outcome, 'promote')
    const v = sign(majority.verdictToPublish!, peer(7))
    // The minority cannot adopt the verdict until the missing evidence arrives.
    const waiting = decide(base({ reports: minorityReports, verdicts: [v], state: minority.state, now }))
    assert.equal(waiting.status.status, 'pilot')
    assert.ok(waiting.pending[0].missing.length > 0)
    const healed = [
      decide(base({ reports, verdicts: [v], state: majority.state, now })),
      decide(base({ reports, verdicts: [v], state: waiting.state, now })),
    ]
    assert.equal(healed[0].status.status, 'canary')
    assert.equal(canonicalJson(healed[0].state), canonicalJson(healed[1].state))
  })
})
