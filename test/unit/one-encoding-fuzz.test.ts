/**
 * Property tests of one encoding per message: random byte-level mutations of valid wire envelopes
 * are refused with a typed error or are the very same message, and decoders never throw on
 * arbitrary input (fast-check, 1,000 runs each).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  createOperatorSigner,
  isCanonicalEd25519,
  normalizeOperatorWire,
  parseEcdsaDer,
  signDeviceMessage,
  signOperatorMessage,
  VerificationError,
  type VerifyContext,
  verifyEnvelope,
  wireMessageId,
} from '../../protocols/index.ts'
import {
  deviceKey,
  exampleCommand,
  exampleHealthReport,
  exampleOperator,
  exampleVerdict,
  NOW,
} from '../fixtures/messages.ts'

const { op, root } = exampleOperator()
const signer = createOperatorSigner(op.privateKeyPem)
const ctx: VerifyContext = { trust: root, now: NOW }
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

describe('one encoding per message: byte-level mutants', () => {
  for (const kind of ['device HealthReport', 'device Verdict', 'operator OperatorCommand'] as const) {
    test(`property: a byte-level mutant of a ${kind} is refused with a typed error or is the same message`, async () => {
      const d = await deviceKey()
      const wire =
        kind === 'device HealthReport'
          ? await signDeviceMessage(exampleHealthReport({ device: d.peerId }), d.key)
          : kind === 'device Verdict'
            ? await signDeviceMessage(exampleVerdict({ device: d.peerId }), d.key)
            : await signOperatorMessage(exampleCommand(), signer)
      const good = verifyEnvelope(wire, ctx)
      assert.ok(good.ok)
      const mutation = fc.oneof(
        fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
        fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
        fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
        fc.record({ op: fc.constant('b64char' as const), at: fc.nat(), char: fc.constantFrom(...'AQgw+/=aZ09') }),
        // the unused low bits of the last base64 character before padding (lenient decoders ignore them)
        fc.record({ op: fc.constant('padbits' as const), at: fc.nat(), delta: fc.integer({ min: 1, max: 15 }) }),
      )
      let verified = 0
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (muts) => {
          let bytes = Buffer.from(wire)
          for (const m of muts) {
            const at = m.at % bytes.length
            if (m.op === 'set') bytes[at] = m.byte
            else if (m.op === 'flip') bytes[at] ^= 1 << m.bit
            else if (m.op === 'insert')
              bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([m.byte]), bytes.subarray(at)])
            else if (m.op === 'delete') bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)])
            else if (m.op === 'b64char') bytes[at] = m.char.charCodeAt(0)
            else {
              const pads = [...bytes.keys()].filter((i) => bytes[i] === 0x3d && bytes[i - 1] !== 0x3d)
              if (pads.length === 0) continue
              const i = pads[m.at % pads.length] - 1
              const idx = B64.indexOf(String.fromCharCode(bytes[i]))
              if (idx >= 0) bytes[i] = B64.charCodeAt(idx ^ m.delta)
            }
          }
          const r = verifyEnvelope(new Uint8Array(bytes), ctx)
          if (r.ok) {
            verified++
            assert.equal(r.digest, good.digest, 'a mutant that verifies is the same message')
            assert.deepEqual(r.message, good.message)
            assert.equal(Buffer.compare(bytes, Buffer.from(wire)), 0, 'and in fact the same bytes')
          } else {
            assert.ok(r.error instanceof VerificationError)
            assert.match(r.error.code, /^ERR_[A-Z_]+$/)
          }
          assert.doesNotThrow(() => wireMessageId(new Uint8Array(bytes)))
        }),
        { numRuns: 1000 },
      )
      assert.ok(verified >= 0)
    })
  }

  test('property: decoders never throw on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        const r = verifyEnvelope(bytes, ctx)
        assert.equal(r.ok, false)
        if (!r.ok) assert.ok(r.error instanceof VerificationError)
        wireMessageId(bytes)
        normalizeOperatorWire(bytes)
        parseEcdsaDer(bytes)
        isCanonicalEd25519(bytes)
      }),
      { numRuns: 1000 },
    )
    fc.assert(
      fc.property(fc.json(), (text) => {
        const bytes = new TextEncoder().encode(text)
        const r = verifyEnvelope(bytes, ctx)
        if (!r.ok) assert.ok(r.error instanceof VerificationError)
        wireMessageId(bytes)
      }),
      { numRuns: 1000 },
    )
  })
})
