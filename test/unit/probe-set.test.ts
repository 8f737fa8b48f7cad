/** The probe set: schema bounds, the probe file, the manifest carrying it, the seed's checks. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { InvalidInputError } from '../../protocols/errors.ts'
import { createOperatorSigner, signOperatorMessage, type VerifyContext, verifyEnvelope } from '../../protocols/index.ts'
import { decodeProbeHeader, encodeProbeHeader, parseProbeFile } from '../../protocols/probe-file.ts'
import { DEFAULT_POLICY } from '../../protocols/rollout/policy-defaults.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import {
  HealthReport,
  MAX_PROBE_SET_BYTES,
  MAX_PROBES,
  type ProbeSet,
  probeSetDigest,
  QualityFigure,
  ReleaseManifest,
} from '../../protocols/schemas/index.ts'
import { buildReleaseManifest } from '../../seed/manifest.ts'
import { preflightManifest } from '../../seed/release-checks.ts'
import { exampleHealthReport, exampleOperator, exampleRelease, NOW } from '../fixtures/messages.ts'

const SET: ProbeSet = {
  id: 'smoke',
  generation: { greedy: true, max_tokens: 16 },
  probes: [{ prompt: 'The capital of France is', reference: ' Paris', reference_tokens: [3, 84] }],
}

describe('probe set', () => {
  test('bounds: probe count, text bytes (UTF-8, not characters), tokens, max_tokens, greedy only, total size', () => {
    const probe = { prompt: 'p', reference: 'r' }
    const ok = (s: unknown) => parseProbeFile(JSON.stringify(s))
    assert.equal(ok({ id: 'x', probes: [probe] }).generation.max_tokens, 32, 'defaults applied')
    const bad = (s: unknown, re: RegExp) =>
      assert.throws(
        () => ok(s),
        (e: Error) => e instanceof InvalidInputError && re.test(e.message),
      )
    bad({ id: 'x', probes: Array(MAX_PROBES + 1).fill(probe) }, /probes/)
    bad({ id: 'x', probes: [] }, /probes/)
    bad({ id: 'x', probes: [{ prompt: 'é'.repeat(1025), reference: '' }] }, /2048 bytes/)
    ok({ id: 'x', probes: [{ prompt: 'é'.repeat(1024), reference: '' }] })
    bad({ id: 'x', probes: [{ prompt: '', reference: 'r' }] }, /prompt is empty/)
    bad({ id: 'x', probes: [{ ...probe, reference_tokens: Array(65).fill(1) }] }, /reference_tokens/)
    bad({ id: 'x', generation: { max_tokens: 65 }, probes: [probe] }, /max_tokens/)
    bad({ id: 'x', generation: { greedy: false }, probes: [probe] }, /greedy/)
    bad({ id: 'x', probes: [{ ...probe, extra: 1 }] }, /probes\.0/)
    // 32 probes of 2 KiB prompts and references: over the 64 KiB set bound
    const big = Array.from({ length: 32 }, () => ({ prompt: 'a'.repeat(2048), reference: 'b'.repeat(2048) }))
    bad({ id: 'x', probes: big }, new RegExp(`over ${MAX_PROBE_SET_BYTES} bytes`))
    assert.throws(() => parseProbeFile('a: &x [1]\nb: *x\n'), InvalidInputError, 'YAML aliases are refused')
    assert.throws(() => parseProbeFile('{'), /not JSON or YAML/)
  })

  test('YAML and JSON files give the same set; the header round-trips it', () => {
    const yaml =
      'id: smoke\ngeneration: { max_tokens: 16 }\nprobes:\n  - prompt: The capital of France is\n    reference: " Paris"\n    reference_tokens: [3, 84]\n'
    assert.deepEqual(parseProbeFile(yaml), SET)
    assert.deepEqual(parseProbeFile(JSON.stringify(SET)), SET)
    assert.deepEqual(decodeProbeHeader(encodeProbeHeader(SET)), SET)
    assert.throws(() => decodeProbeHeader('%%%'), InvalidInputError)
  })

  test('property: any set the schema accepts stays within the manifest budget', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ prompt: fc.string({ minLength: 1, maxLength: 600 }), reference: fc.string({ maxLength: 600 }) }),
          {
            minLength: 1,
            maxLength: MAX_PROBES,
          },
        ),
        (probes) => {
          try {
            const s = parseProbeFile(JSON.stringify({ id: 'p', probes }))
            assert.ok(new TextEncoder().encode(JSON.stringify(s)).length <= MAX_PROBE_SET_BYTES)
          } catch (e) {
            assert.ok(e instanceof InvalidInputError)
          }
        },
      ),
      { numRuns: 100 },
    )
  })

  test('the manifest carries the set inline, named by digest; old manifests stay valid; a wrong digest is refused', () => {
    const m = exampleRelease({
      probes: SET,
      provenance: { approved_by: [], validation_dataset: { id: 'smoke', digest: probeSetDigest(SET) } },
    })
    assert.ok(ReleaseManifest.safeParse(m).success)
    assert.ok(ReleaseManifest.safeParse(exampleRelease()).success, 'a manifest without probes')
    const { op, root } = exampleOperator()
    const signer = createOperatorSigner(op.privateKeyPem)
    const ctx: VerifyContext = { trust: root, now: NOW }
    return (async () => {
      const good = verifyEnvelope(await signOperatorMessage(m, signer), ctx)
      assert.ok(good.ok, good.ok ? '' : good.error.message)
      const wrong = {
        ...m,
        provenance: { ...m.provenance, validation_dataset: { id: 'smoke', digest: 'c'.repeat(64) } },
      }
      const r = verifyEnvelope(await signOperatorMessage(wrong, signer), ctx)
      assert.equal(r.ok ? 'ok' : r.error.code, 'ERR_DIGEST_MISMATCH')
      const unnamed = { ...m, provenance: { approved_by: [] } }
      const u = verifyEnvelope(await signOperatorMessage(unnamed, signer), ctx)
      assert.equal(u.ok ? 'ok' : u.error.code, 'ERR_DIGEST_MISMATCH')
    })()
  })

  test('health reports: quality figures are optional and bounded; agreed never exceeds tokens', () => {
    const fig = {
      model: 'm',
      version: '1.0.0',
      probe_set: 'a'.repeat(64),
      probes: 4,
      tokens: 100,
      agreed: 90,
      nll: 300,
    }
    assert.ok(HealthReport.safeParse(exampleHealthReport()).success, 'a report without figures')
    assert.ok(HealthReport.safeParse({ ...exampleHealthReport(), quality: [fig] }).success)
    assert.equal(QualityFigure.safeParse({ ...fig, agreed: 101 }).success, false)
    assert.equal(QualityFigure.safeParse({ ...fig, probes: 33 }).success, false)
    assert.equal(QualityFigure.safeParse({ ...fig, nll: -1 }).success, false)
    assert.equal(HealthReport.safeParse({ ...exampleHealthReport(), quality: Array(17).fill(fig) }).success, false)
  })

  test('the seed builds validation_dataset from the set, and refuses a quality gate without probes before writing', () => {
    const gated = parsePolicyYaml(
      'stages:\n  - { name: all, percent: 100 }\ngates:\n  quality: { min_agreement: 0.9, max_perplexity_regression_pct: 20 }\n',
    )
    assert.equal(gated.gates.quality?.min_agreement, 0.9)
    assert.throws(
      () => parsePolicyYaml('stages:\n  - { name: all, percent: 100 }\ngates:\n  quality: { min_agrement: 1 }\n'),
      /unknown key/,
    )
    const req = { model: 'm', version: '2.0.0', policy: gated }
    const ctx = { fleet: 'test-fleet', seq: 2, now: NOW }
    assert.throws(() => preflightManifest(req, ctx), /quality gate: publish the release with its probes/)
    preflightManifest({ ...req, probes: SET }, ctx)
    const base = exampleRelease()
    const m = buildReleaseManifest({
      fleet: 'test-fleet',
      model: 'm',
      version: '2.0.0',
      seq: 2,
      append: { size: base.file.size, sha256: base.file.sha256, chunks: base.chunks } as never,
      gguf: { quantization: 'F32', architecture: 'llama' },
      policy: DEFAULT_POLICY,
      now: NOW,
      probes: SET,
    })
    assert.deepEqual(m.provenance.validation_dataset, { id: 'smoke', digest: probeSetDigest(SET) })
    assert.deepEqual(m.probes, SET)
  })
})
