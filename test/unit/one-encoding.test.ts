/**
 * One encoding per message: every variant of a signed message that someone without the key can
 * make (base64 padding bits, the ECDSA high-S twin, an empty keyid, unknown fields, non-canonical
 * JSON) is refused with a typed error, and what verifies is named by the same id. The byte-level
 * property tests are in one-encoding-fuzz.test.ts.
 */
import assert from 'node:assert/strict'
import { sign as cryptoSign, verify as cryptoVerify, generateKeyPairSync } from 'node:crypto'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  canonicalBytes,
  createOperatorSigner,
  fromBase64,
  isCanonicalEd25519,
  isLowSEcdsa,
  normalizeOperatorWire,
  pae,
  parseEcdsaDer,
  signDeviceMessage,
  signOperatorMessage,
  toBase64,
  toLowSEcdsa,
  type VerifyContext,
  verifyEnvelope,
  wireMessageId,
} from '../../protocols/index.ts'
import { deviceKey, exampleCommand, exampleHealthReport, exampleOperator, NOW } from '../fixtures/messages.ts'

const { op, root } = exampleOperator()
const signer = createOperatorSigner(op.privateKeyPem)
const ctx: VerifyContext = { trust: root, now: NOW }
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n
const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n

// biome-ignore lint/suspicious/noExplicitAny: tests poke at arbitrary JSON
type Json = Record<string, any>
const decode = (b: Uint8Array): Json => JSON.parse(Buffer.from(b).toString('utf8'))
const edit = (wire: Uint8Array, f: (e: Json) => void): Uint8Array => {
  const e = decode(wire)
  f(e)
  return canonicalBytes(e)
}
const _B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const code = (r: ReturnType<typeof verifyEnvelope>): string => (r.ok ? 'OK' : r.error.code)

/** Every text that lenient base64 decoding maps to the same bytes: the last data character's unused bits. */
function paddingVariants(b64: string): string[] {
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0
  if (pad === 0) return [b64]
  const free = pad === 2 ? 4 : 2
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  const at = b64.length - pad - 1
  const base = alphabet.indexOf(b64[at]) & ~((1 << free) - 1)
  return Array.from({ length: 1 << free }, (_, i) => `${b64.slice(0, at)}${alphabet[base | i]}${b64.slice(at + 1)}`)
}

/** The high-S twin (r, n - s) of a low-S DER signature. */
function highS(der: Uint8Array): Uint8Array {
  const rs = parseEcdsaDer(der)
  assert.ok(rs)
  const int = (v: bigint) => {
    let h = v.toString(16)
    if (h.length % 2) h = `0${h}`
    let b = Buffer.from(h, 'hex')
    if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b])
    return Buffer.concat([Buffer.from([2, b.length]), b])
  }
  const r = int(rs.r)
  const s = int(P256_N - rs.s)
  return Buffer.concat([Buffer.from([0x30, r.length + s.length]), r, s])
}

describe('one encoding per message', () => {
  test('strict base64: only the canonical text of some bytes decodes', () => {
    assert.deepEqual([...fromBase64('QQ==')], [0x41])
    for (const t of ['QR==', 'QUI=', 'QUJ=', 'QQ=', 'QQ', ' QQ==', 'QQ==\n', 'Q===']) {
      if (t === 'QUI=') continue // canonical (two bytes)
      assert.throws(() => fromBase64(t), TypeError, t)
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const text = toBase64(bytes)
        assert.deepEqual([...fromBase64(text)], [...bytes])
        for (const v of paddingVariants(text)) if (v !== text) assert.throws(() => fromBase64(v), TypeError)
      }),
      { numRuns: 1000 },
    )
  })

  test('a HealthReport has exactly one valid encoding of its base64 fields (255 variants refused)', async () => {
    const d = await deviceKey()
    const wire = await signDeviceMessage(exampleHealthReport({ device: d.peerId }), d.key)
    const env = decode(wire)
    const ok = verifyEnvelope(wire, ctx)
    assert.ok(ok.ok)
    let variants = 0
    for (const payload of paddingVariants(env.payload)) {
      for (const sig of paddingVariants(env.sig)) {
        if (payload === env.payload && sig === env.sig) continue
        variants++
        const r = verifyEnvelope(
          edit(wire, (e) => Object.assign(e, { payload, sig })),
          ctx,
        )
        assert.equal(code(r), 'ERR_SCHEMA')
      }
    }
    assert.ok(variants >= 15, `${variants} variants tried`)
  })

  test('operator bundles: the high-S twin, an empty or other keyid, unknown fields and lenient base64 are refused', async () => {
    const wire = await signOperatorMessage(exampleCommand(), signer)
    const good = verifyEnvelope(wire, ctx)
    assert.ok(good.ok)
    const sig = fromBase64(decode(wire).bundle.dsseEnvelope.signatures[0].sig)
    assert.ok(isLowSEcdsa(sig), 'the signer makes low-S signatures')
    const twin = edit(wire, (e) => {
      e.bundle.dsseEnvelope.signatures[0].sig = toBase64(highS(sig))
    })
    assert.equal(code(verifyEnvelope(twin, ctx)), 'ERR_BAD_SIGNATURE')
    assert.equal(
      code(
        verifyEnvelope(
          edit(wire, (e) => {
            e.bundle.dsseEnvelope.signatures[0].keyid = ''
          }),
          ctx,
        ),
      ),
      'ERR_SCHEMA',
    )
    assert.equal(
      code(
        verifyEnvelope(
          edit(wire, (e) => {
            e.extra = 1
          }),
          ctx,
        ),
      ),
      'ERR_SCHEMA',
    )
    assert.equal(
      code(
        verifyEnvelope(
          edit(wire, (e) => {
            e.bundle.extra = 1
          }),
          ctx,
        ),
      ),
      'ERR_SCHEMA',
    )
    assert.equal(
      code(
        verifyEnvelope(
          edit(wire, (e) => {
            e.bundle.verificationMaterial.tlogEntries = []
          }),
          ctx,
        ),
      ),
      'ERR_SCHEMA',
    )
    for (const field of ['payload'] as const) {
      const text = decode(wire).bundle.dsseEnvelope[field] as string
      for (const v of paddingVariants(text)) {
        if (v === text) continue
        const r = verifyEnvelope(
          edit(wire, (e) => {
            e.bundle.dsseEnvelope[field] = v
          }),
          ctx,
        )
        assert.equal(code(r), 'ERR_SCHEMA')
      }
    }
    for (const v of paddingVariants(toBase64(sig))) {
      if (v === toBase64(sig)) continue
      const r = verifyEnvelope(
        edit(wire, (e) => {
          e.bundle.dsseEnvelope.signatures[0].sig = v
        }),
        ctx,
      )
      assert.equal(code(r), 'ERR_SCHEMA')
    }
    // an older node's high-S or keyid-less envelope is rewritten to the accepted form, same id
    const legacy = edit(twin, (e) => {
      e.bundle.dsseEnvelope.signatures[0].keyid = ''
    })
    const normalized = verifyEnvelope(normalizeOperatorWire(legacy), ctx)
    assert.ok(normalized.ok)
    assert.equal(normalized.digest, good.digest)
  })

  test('the signer never makes a high-S signature; toLowSEcdsa keeps the signature valid', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const data = Buffer.from('x')
    let high = 0
    for (let i = 0; i < 200; i++) {
      const raw = cryptoSign('sha256', data, privateKey)
      if (!isLowSEcdsa(raw)) high++
      const low = toLowSEcdsa(raw)
      assert.ok(isLowSEcdsa(low))
      assert.ok(cryptoVerify('sha256', data, publicKey, low), 'the low-S twin verifies')
      assert.ok(isLowSEcdsa(signer.sign(data)))
    }
    assert.ok(high > 50, `raw OpenSSL signatures are high-S about half of the time (${high}/200)`)
  })

  test('an Ed25519 signature with S + L is refused as non-canonical', async () => {
    const d = await deviceKey()
    const wire = await signDeviceMessage(exampleHealthReport({ device: d.peerId }), d.key)
    const sig = fromBase64(decode(wire).sig)
    assert.ok(isCanonicalEd25519(sig))
    const s = BigInt(`0x${Buffer.from(sig.subarray(32)).reverse().toString('hex')}`) + ED25519_L
    const mal = Buffer.concat([sig.subarray(0, 32), Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse()])
    assert.equal(isCanonicalEd25519(mal), false)
    assert.equal(
      code(
        verifyEnvelope(
          edit(wire, (e) => {
            e.sig = toBase64(mal)
          }),
          ctx,
        ),
      ),
      'ERR_BAD_SIGNATURE',
    )
  })

  test('a signed payload that is not canonical JSON is refused', async () => {
    const d = await deviceKey()
    const msg = exampleHealthReport({ device: d.peerId })
    const payload = Buffer.from(JSON.stringify(msg, null, 1))
    const sig = await d.key.sign(pae('application/vnd.llmesh.device+json', payload))
    const wire = canonicalBytes({
      kind: 'device',
      type: 'HealthReport',
      signer: d.peerId,
      payload: toBase64(payload),
      sig: toBase64(sig),
    })
    assert.equal(code(verifyEnvelope(wire, ctx)), 'ERR_SCHEMA')
  })

  test('two signatures of one operator message (ECDSA is randomized) are one message', async () => {
    const msg = exampleCommand()
    const a = await signOperatorMessage(msg, signer)
    let b = await signOperatorMessage(msg, signer)
    while (Buffer.compare(a, b) === 0) b = await signOperatorMessage(msg, signer)
    const ra = verifyEnvelope(a, ctx)
    const rb = verifyEnvelope(b, ctx)
    assert.ok(ra.ok && rb.ok)
    assert.equal(ra.digest, rb.digest)
    assert.equal(wireMessageId(a), ra.digest)
  })
})
