import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { z } from 'zod'
import {
  DeviceEnrollment,
  DeviceMessage,
  HealthReport,
  isStrictSemver,
  OperatorCommand,
  OperatorMessage,
  ReleaseManifest,
  Revocation,
  RolloutPolicy,
  TrustRoot,
  Verdict,
  versionCore,
  WireEnvelope,
} from '../../protocols/index.ts'
import {
  exampleCommand,
  exampleEnrollment,
  exampleHealthReport,
  examplePolicy,
  exampleRelease,
  exampleRevocation,
  exampleTrustRoot,
  exampleVerdict,
  PEER_A,
} from '../fixtures/messages.ts'

/** Deep-copies `value` and applies `edit` to it. */
// biome-ignore lint/suspicious/noExplicitAny: tests edit arbitrary JSON
function edited<T>(value: T, edit: (v: any) => void): unknown {
  const copy = structuredClone(value)
  edit(copy)
  return copy
}
function accepts(schema: z.ZodType, value: unknown): void {
  const r = schema.safeParse(value)
  assert.equal(r.success, true, r.success ? '' : JSON.stringify(r.error.issues[0]))
}
function rejects(schema: z.ZodType, value: unknown, path: string): void {
  const r = schema.safeParse(value)
  assert.equal(r.success, false, `expected a refusal at ${path}`)
  if (!r.success) assert.equal(r.error.issues[0].path.join('.'), path)
}

describe('schemas', () => {
  test('ReleaseManifest: valid example; bad semver, bad sha, missing field, zero seq, unknown arch', () => {
    const m = exampleRelease()
    accepts(ReleaseManifest, m)
    rejects(ReleaseManifest, { ...m, version: '1.3' }, 'version')
    rejects(ReleaseManifest, { ...m, version: 'v1.3.0' }, 'version')
    rejects(
      ReleaseManifest,
      edited(m, (v) => {
        v.file.sha256 = 'ABC'
      }),
      'file.sha256',
    )
    rejects(
      ReleaseManifest,
      edited(m, (v) => delete v.expires_at),
      'expires_at',
    )
    rejects(ReleaseManifest, { ...m, seq: 0 }, 'seq')
    rejects(ReleaseManifest, { ...m, architectures: ['mips'] }, 'architectures.0')
    rejects(ReleaseManifest, { ...m, runtime: 'not a range!' }, 'runtime')
    rejects(
      ReleaseManifest,
      edited(m, (v) => {
        v.chunks.chunks = []
      }),
      'chunks.chunks',
    )
    rejects(ReleaseManifest, { ...m, fleet: 'Bad Fleet' }, 'fleet')
  })

  test('semver with build metadata (underscores allowed) and versionCore', () => {
    for (const v of ['1.3.0+gguf-q4_0-aarch64', '1.3.0', '2.0.0-rc.1+b.2']) assert.equal(isStrictSemver(v), true, v)
    for (const v of ['1.3', 'v1.3.0', ' 1.3.0', '01.3.0', '1.3.0+', '1.3.0+a..b'])
      assert.equal(isStrictSemver(v), false, v)
    assert.equal(versionCore('1.3.0+gguf-q4_0-aarch64'), '1.3.0')
  })

  test('RolloutPolicy: defaults fill in; no stages or a bad stage name is refused', () => {
    const p = RolloutPolicy.parse({ stages: [{ name: 'all', percent: 100 }], gates: {} })
    assert.equal(p.inconclusive, 'hold')
    assert.equal(p.gates.min_reports, 1)
    accepts(RolloutPolicy, examplePolicy())
    rejects(RolloutPolicy, { ...examplePolicy(), stages: [] }, 'stages')
    rejects(
      RolloutPolicy,
      edited(examplePolicy(), (v) => {
        v.stages[0].name = 'Pilot Stage'
      }),
      'stages.0.name',
    )
    rejects(
      RolloutPolicy,
      edited(examplePolicy(), (v) => {
        v.stages[1].percent = 120
      }),
      'stages.1.percent',
    )
  })

  test('HealthReport: valid example; bad peer id, cpu over 100, missing sketch', () => {
    const h = exampleHealthReport()
    accepts(HealthReport, h)
    rejects(HealthReport, { ...h, device: 'QmNotEd25519' }, 'device')
    rejects(
      HealthReport,
      edited(h, (v) => {
        v.hardware.cpu_pct = 140
      }),
      'hardware.cpu_pct',
    )
    rejects(
      HealthReport,
      edited(h, (v) => delete v.inference[0].latency_ms),
      'inference.0.latency_ms',
    )
    rejects(
      HealthReport,
      edited(h, (v) => {
        v.prompt_hashes = ['nothex']
      }),
      'prompt_hashes.0',
    )
  })

  test('OperatorCommand: valid example; unknown action, short id', () => {
    accepts(OperatorCommand, exampleCommand())
    rejects(OperatorCommand, { ...exampleCommand(), action: 'reboot' }, 'action')
    rejects(OperatorCommand, { ...exampleCommand(), id: '12' }, 'id')
  })

  test('Verdict: valid example; bad outcome, bad evidence digest', () => {
    accepts(Verdict, exampleVerdict())
    rejects(Verdict, { ...exampleVerdict(), outcome: 'maybe' }, 'outcome')
    rejects(
      Verdict,
      edited(exampleVerdict(), (v) => {
        v.evidence[0].digest = 'x'
      }),
      'evidence.0.digest',
    )
  })

  test('DeviceEnrollment and Revocation: valid examples; bad tag, missing reason', () => {
    accepts(DeviceEnrollment, exampleEnrollment())
    rejects(DeviceEnrollment, { ...exampleEnrollment(), tags: ['Has Space'] }, 'tags.0')
    accepts(Revocation, exampleRevocation())
    rejects(
      Revocation,
      edited(exampleRevocation(), (v) => delete v.reason),
      'reason',
    )
  })

  test('TrustRoot: valid example; bad keyid, no keys, unknown alg', () => {
    const r = exampleTrustRoot()
    accepts(TrustRoot, r)
    rejects(
      TrustRoot,
      edited(r, (v) => {
        v.keys[0].keyid = 'nothex'
      }),
      'keys.0.keyid',
    )
    rejects(TrustRoot, { ...r, keys: [] }, 'keys')
    rejects(
      TrustRoot,
      edited(r, (v) => {
        v.keys[0].alg = 'rsa'
      }),
      'keys.0.alg',
    )
    rejects(TrustRoot, { ...r, version: 0 }, 'version')
  })

  test('message unions dispatch on type; a device type is not an operator message', () => {
    accepts(OperatorMessage, exampleRelease())
    accepts(DeviceMessage, exampleHealthReport())
    assert.equal(OperatorMessage.safeParse(exampleHealthReport()).success, false)
    assert.equal(DeviceMessage.safeParse(exampleRelease()).success, false)
  })

  test('WireEnvelope: kinds and their fields', () => {
    accepts(WireEnvelope, { kind: 'operator', type: 'ReleaseManifest', bundle: {} })
    accepts(WireEnvelope, { kind: 'device', type: 'HealthReport', signer: PEER_A, payload: 'e30=', sig: 'AA==' })
    rejects(WireEnvelope, { kind: 'operator', type: 'HealthReport', bundle: {} }, 'type')
    rejects(WireEnvelope, { kind: 'device', type: 'Verdict', signer: 'bob', payload: '', sig: '' }, 'signer')
  })
})
