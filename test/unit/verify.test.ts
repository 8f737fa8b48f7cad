import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import { bundleToJSON } from '@sigstore/bundle'
import { DSSEBundleBuilder } from '@sigstore/sign'
import {
  canonicalBytes,
  createOperatorSigner,
  fromBase64,
  generateOperatorKey,
  MAX_SIZE,
  type OperatorMessage,
  operatorEnvelopeBytes,
  SeqTracker,
  signOperatorBundle,
  signOperatorMessage,
  type VerifyContext,
  verifyArtifact,
  verifyEnvelope,
  wireMessageId,
} from '../../protocols/index.ts'
import { makeTinyGgufBuffer } from '../fixtures/gguf-writer.ts'
import {
  DAY,
  exampleCommand,
  exampleEnrollment,
  exampleRelease,
  exampleRevocation,
  exampleTrustRoot,
  NOW,
} from '../fixtures/messages.ts'
import { code, decode, flipBase64Byte, operatorFixture, tamper } from './verify-helpers.ts'

const { op, root, signer, ctx } = operatorFixture()

describe('verifyEnvelope: operator messages (real Sigstore bundles)', () => {
  test('accepts every operator message type signed by a trusted key', async () => {
    const msgs: OperatorMessage[] = [exampleRelease(), exampleCommand(), exampleEnrollment(), exampleRevocation(), root]
    for (const m of msgs) {
      const wire = await signOperatorMessage(m, signer)
      const r = verifyEnvelope(wire, ctx)
      assert.equal(r.ok, true, `${m.type}: ${r.ok ? '' : r.error.message}`)
      if (!r.ok) continue
      assert.equal(r.type, m.type)
      assert.equal(r.signer, op.keyid)
      // named by content and signer, not by the wire bytes
      assert.equal(r.digest, wireMessageId(wire))
      assert.notEqual(r.digest, createHash('sha256').update(wire).digest('hex'))
      assert.equal(r.replay, false)
      assert.equal(r.envelope.kind, 'operator')
    }
  })

  test('flipped byte in the DSSE payload → ERR_BAD_SIGNATURE', async () => {
    const wire = await signOperatorMessage(exampleRelease(), signer)
    const bad = tamper(wire, (e) => {
      e.bundle.dsseEnvelope.payload = flipBase64Byte(e.bundle.dsseEnvelope.payload, 40)
    })
    assert.equal(code(verifyEnvelope(bad, ctx)), 'ERR_BAD_SIGNATURE')
  })

  test('flipped byte in the signature → ERR_BAD_SIGNATURE', async () => {
    const wire = await signOperatorMessage(exampleRelease(), signer)
    const bad = tamper(wire, (e) => {
      const s = e.bundle.dsseEnvelope.signatures[0]
      s.sig = flipBase64Byte(s.sig, fromBase64(s.sig).length - 3)
    })
    assert.equal(code(verifyEnvelope(bad, ctx)), 'ERR_BAD_SIGNATURE')
  })

  test('payload edited to a different manifest (seq bumped) → ERR_BAD_SIGNATURE', async () => {
    const wire = await signOperatorMessage(exampleRelease(), signer)
    const bad = tamper(wire, (e) => {
      const st = JSON.parse(Buffer.from(e.bundle.dsseEnvelope.payload, 'base64').toString())
      st.predicate.seq = 99
      e.bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString('base64')
    })
    assert.equal(code(verifyEnvelope(bad, ctx)), 'ERR_BAD_SIGNATURE')
  })

  test('the wrong key (not in the trust root) → ERR_UNKNOWN_SIGNER', async () => {
    const other = createOperatorSigner(generateOperatorKey().privateKeyPem)
    const wire = await signOperatorMessage(exampleRelease(), other)
    assert.equal(code(verifyEnvelope(wire, ctx)), 'ERR_UNKNOWN_SIGNER')
  })

  test('a foreign key claiming the trusted keyid → ERR_BAD_SIGNATURE', async () => {
    const other = createOperatorSigner(generateOperatorKey().privateKeyPem)
    const liar = { ...other, keyid: op.keyid, publicKeyPem: op.publicKeyPem, key: op.key, sign: other.sign }
    const wire = await signOperatorMessage(exampleRelease(), liar)
    assert.equal(code(verifyEnvelope(wire, ctx)), 'ERR_BAD_SIGNATURE')
  })

  test('Ed25519 operator keys work too', async () => {
    const ed = generateOperatorKey('ed25519')
    const r = verifyEnvelope(await signOperatorMessage(exampleRelease(), createOperatorSigner(ed.privateKeyPem)), {
      trust: exampleTrustRoot({ keys: [ed.key] }),
      now: NOW,
    })
    assert.equal(code(r), 'OK')
  })

  test('expired manifest → ERR_EXPIRED (freeze)', async () => {
    const wire = await signOperatorMessage(exampleRelease({ expires_at: NOW - 1 }), signer)
    assert.equal(code(verifyEnvelope(wire, ctx)), 'ERR_EXPIRED')
    // the same manifest was fine before it expired
    assert.equal(code(verifyEnvelope(wire, { ...ctx, now: NOW - 2 })), 'OK')
  })

  test('expired enrollment and expired trust root → ERR_EXPIRED', async () => {
    const enr = await signOperatorMessage(exampleEnrollment({ expires_at: NOW - 1 }), signer)
    assert.equal(code(verifyEnvelope(enr, ctx)), 'ERR_EXPIRED')
    const rel = await signOperatorMessage(exampleRelease(), signer)
    const expiredRoot = { ...root, expires_at: NOW - 1 }
    assert.equal(code(verifyEnvelope(rel, { trust: expiredRoot, now: NOW })), 'ERR_EXPIRED')
  })

  test('manifest dated in the future → ERR_FUTURE', async () => {
    const wire = await signOperatorMessage(exampleRelease({ created_at: NOW + DAY }), signer)
    assert.equal(code(verifyEnvelope(wire, ctx)), 'ERR_FUTURE')
  })

  test('downgraded manifest (lower seq) → ERR_ROLLBACK; replay of the same one is idempotent', async () => {
    const seen = new SeqTracker()
    const c: VerifyContext = { ...ctx, highestSeq: seen.highestSeq, seenDigest: seen.seenDigest }
    const v5 = await signOperatorMessage(exampleRelease({ seq: 5, version: '1.5.0' }), signer)
    const v4 = await signOperatorMessage(exampleRelease({ seq: 4, version: '1.4.0' }), signer)
    const r5 = verifyEnvelope(v5, c)
    assert.ok(r5.ok)
    assert.equal(seen.record(r5.message, r5.digest), true)
    const down = verifyEnvelope(v4, c)
    assert.equal(code(down), 'ERR_ROLLBACK')
    const replay = verifyEnvelope(v5, c)
    assert.ok(replay.ok)
    assert.equal(replay.replay, true)
    assert.equal(seen.record(replay.message, replay.digest), false)
    // a different manifest with the same seq (equivocation) is refused
    const twin = await signOperatorMessage(exampleRelease({ seq: 5, version: '1.5.1' }), signer)
    assert.equal(code(verifyEnvelope(twin, c)), 'ERR_ROLLBACK')
    // another model has its own sequence
    const other = await signOperatorMessage(exampleRelease({ seq: 1, model: 'other-model' }), signer)
    assert.equal(code(verifyEnvelope(other, c)), 'OK')
  })

  test('replay with only highestSeq (no seenDigest) is refused: equal seq is not provably the same', async () => {
    const wire = await signOperatorMessage(exampleRelease({ seq: 5 }), signer)
    assert.equal(code(verifyEnvelope(wire, { ...ctx, highestSeq: () => 5 })), 'ERR_ROLLBACK')
    assert.equal(code(verifyEnvelope(wire, { ...ctx, highestSeq: () => 4 })), 'OK')
  })

  test('oversized → ERR_OVERSIZED, checked before parsing', () => {
    const huge = new Uint8Array(6 * 1024 * 1024).fill(0x7b) // '{{{{…' is not even JSON
    assert.equal(code(verifyEnvelope(huge, ctx)), 'ERR_OVERSIZED')
  })

  test('over the per-type limit → ERR_OVERSIZED', async () => {
    const wire = await signOperatorMessage(exampleCommand(), signer)
    const big = tamper(wire, (e) => {
      e.bundle.padding = 'x'.repeat(MAX_SIZE.OperatorCommand)
    })
    assert.ok(big.byteLength < MAX_SIZE.ReleaseManifest)
    assert.equal(code(verifyEnvelope(big, ctx)), 'ERR_OVERSIZED')
  })

  test('unknown type → ERR_UNKNOWN_TYPE', async () => {
    const wire = await signOperatorMessage(exampleCommand(), signer)
    assert.equal(
      code(
        verifyEnvelope(
          tamper(wire, (e) => {
            e.type = 'Firmware'
          }),
          ctx,
        ),
      ),
      'ERR_UNKNOWN_TYPE',
    )
    assert.equal(
      code(
        verifyEnvelope(
          tamper(wire, (e) => {
            e.type = 'HealthReport'
          }),
          ctx,
        ),
      ),
      'ERR_UNKNOWN_TYPE',
    )
  })

  test('wrong type: envelope type differs from the signed payload → refused', async () => {
    const wire = await signOperatorMessage(exampleRevocation(), signer)
    const r = verifyEnvelope(
      tamper(wire, (e) => {
        e.type = 'OperatorCommand'
      }),
      ctx,
    )
    assert.equal(code(r), 'ERR_SCHEMA')
    const rel = await signOperatorMessage(exampleRelease(), signer)
    // a release statement relabelled as a command: payload type mismatch
    assert.equal(
      code(
        verifyEnvelope(
          tamper(rel, (e) => {
            e.type = 'OperatorCommand'
          }),
          ctx,
        ),
      ),
      'ERR_SCHEMA',
    )
  })

  test('wrong fleet → ERR_WRONG_FLEET', async () => {
    const wire = await signOperatorMessage(exampleRelease({ fleet: 'other-fleet' }), signer)
    assert.equal(code(verifyEnvelope(wire, ctx)), 'ERR_WRONG_FLEET')
    const ok = await signOperatorMessage(exampleRelease(), signer)
    assert.equal(code(verifyEnvelope(ok, { ...ctx, fleet: 'other-fleet' })), 'ERR_WRONG_FLEET')
  })

  test('malformed input → ERR_SCHEMA, never a throw', () => {
    const inputs: unknown[] = [
      new TextEncoder().encode('{"kind":"operator",'),
      new Uint8Array([0xff, 0xfe, 0x00]),
      new TextEncoder().encode('null'),
      new TextEncoder().encode('[]'),
      new TextEncoder().encode('{"kind":"operator","type":"ReleaseManifest","bundle":{}}'),
      new TextEncoder().encode('{"kind":"device","type":"HealthReport","payload":"","sig":"","signer":"x"}'),
      'not bytes',
      undefined,
    ]
    for (const input of inputs) {
      const r = verifyEnvelope(input as Uint8Array, ctx)
      assert.equal(r.ok, false)
      if (!r.ok) assert.equal(r.error.code, 'ERR_SCHEMA', String(input))
    }
  })

  test('non-canonical wire bytes → ERR_SCHEMA', async () => {
    const wire = await signOperatorMessage(exampleCommand(), signer)
    const pretty = new TextEncoder().encode(JSON.stringify(decode(wire), null, 2))
    assert.equal(code(verifyEnvelope(pretty, ctx)), 'ERR_SCHEMA')
  })

  test('validly signed payload that violates the schema → ERR_SCHEMA', async () => {
    // sign a bad command by hand, bypassing signOperatorMessage's own validation
    const bad = { ...exampleCommand(), version: 'one' }
    const builder = new DSSEBundleBuilder({
      signer: {
        sign: async (data) => ({
          signature: Buffer.from(signer.sign(data)),
          key: { $case: 'publicKey', publicKey: signer.publicKeyPem, hint: signer.keyid },
        }),
      },
      witnesses: [],
    })
    const bundle = await builder.create({
      data: Buffer.from(canonicalBytes(bad)),
      type: 'application/vnd.llmesh.operator+json',
    })
    const wire = operatorEnvelopeBytes('OperatorCommand', JSON.parse(JSON.stringify(bundleToJSON(bundle))))
    const r = verifyEnvelope(wire, ctx)
    assert.equal(code(r), 'ERR_SCHEMA')
    if (!r.ok) assert.match(r.error.message, /version/)
    await assert.rejects(signOperatorMessage(bad, signer), /invalid OperatorCommand/)
  })
})

describe('verifyArtifact: the file against the signed subject', () => {
  test('real file: accepted; a flipped byte in the file → ERR_DIGEST_MISMATCH', async () => {
    const file = makeTinyGgufBuffer({ layers: 1, embd: 16 })
    const sha = createHash('sha256').update(file).digest('hex')
    const wire = await signOperatorMessage(
      exampleRelease({ file: { ...exampleRelease().file, sha256: sha, size: file.length } }),
      signer,
    )
    const r = verifyEnvelope(wire, ctx)
    assert.ok(r.ok && r.message.type === 'ReleaseManifest')
    assert.deepEqual(verifyArtifact(sha, r.message), { ok: true })
    file[file.length - 1] ^= 0x01
    const bad = verifyArtifact(createHash('sha256').update(file).digest('hex'), r.message)
    assert.equal(bad.ok, false)
    if (!bad.ok) assert.equal(bad.error.code, 'ERR_DIGEST_MISMATCH')
  })

  test('in-toto subject carries the file name and sha256', async () => {
    const bundle = await signOperatorBundle(exampleRelease(), signer)
    const env = bundle.dsseEnvelope as { payload: string; payloadType: string }
    assert.equal(bundle.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json')
    assert.equal(env.payloadType, 'application/vnd.in-toto+json')
    const st = JSON.parse(Buffer.from(env.payload, 'base64').toString())
    assert.equal(st._type, 'https://in-toto.io/Statement/v1')
    assert.deepEqual(st.subject, [{ name: 'tiny-llama-1.3.0+gguf-q4_0-any.gguf', digest: { sha256: 'a'.repeat(64) } }])
    assert.equal(st.predicate.seq, 3)
  })
})
