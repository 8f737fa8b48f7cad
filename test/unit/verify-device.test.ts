/** verifyEnvelope on device messages (Ed25519 envelopes signed by a device's peer key). */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  canonicalBytes,
  fromBase64,
  SeqTracker,
  signDeviceMessage,
  toBase64,
  type VerifyContext,
  verifyEnvelope,
} from '../../protocols/index.ts'
import { deviceKey, exampleHealthReport, exampleVerdict } from '../fixtures/messages.ts'
import { code, decode, flipBase64Byte, operatorFixture, tamper } from './verify-helpers.ts'

const { ctx } = operatorFixture()

describe('verifyEnvelope: device messages', () => {
  test('health report and verdict signed by the device are accepted', async () => {
    const d = await deviceKey()
    for (const m of [exampleHealthReport({ device: d.peerId }), exampleVerdict({ device: d.peerId })]) {
      const r = verifyEnvelope(await signDeviceMessage(m, d.key), ctx)
      assert.equal(code(r), 'OK')
      if (r.ok) assert.equal(r.signer, d.peerId)
    }
  })

  test('device field != signer → ERR_UNKNOWN_SIGNER', async () => {
    const d = await deviceKey()
    const other = await deviceKey()
    // signDeviceMessage refuses it outright…
    await assert.rejects(signDeviceMessage(exampleHealthReport({ device: other.peerId }), d.key), /not the signing key/)
    // …and a forged envelope claiming `other` is refused on receipt
    const wire = await signDeviceMessage(exampleHealthReport({ device: d.peerId }), d.key)
    const payload = Buffer.from(canonicalBytes(exampleHealthReport({ device: other.peerId })))
    const { pae } = await import('../../protocols/signing/dsse.ts')
    const sig = await d.key.sign(pae('application/vnd.llmesh.device+json', payload))
    const forged = tamper(wire, (e) => {
      e.payload = payload.toString('base64')
      e.sig = toBase64(sig)
    })
    assert.equal(code(verifyEnvelope(forged, ctx)), 'ERR_UNKNOWN_SIGNER')
  })

  test('envelope re-attributed to another peer → ERR_BAD_SIGNATURE', async () => {
    const d = await deviceKey()
    const other = await deviceKey()
    const wire = await signDeviceMessage(exampleHealthReport({ device: d.peerId }), d.key)
    assert.equal(
      code(
        verifyEnvelope(
          tamper(wire, (e) => {
            e.signer = other.peerId
          }),
          ctx,
        ),
      ),
      'ERR_BAD_SIGNATURE',
    )
  })

  test('flipped byte in device payload or signature → ERR_BAD_SIGNATURE', async () => {
    const d = await deviceKey()
    const wire = await signDeviceMessage(exampleHealthReport({ device: d.peerId }), d.key)
    assert.equal(
      code(
        verifyEnvelope(
          tamper(wire, (e) => {
            e.payload = flipBase64Byte(e.payload, 30)
          }),
          ctx,
        ),
      ),
      'ERR_BAD_SIGNATURE',
    )
    assert.equal(
      code(
        verifyEnvelope(
          tamper(wire, (e) => {
            e.sig = flipBase64Byte(e.sig, 5)
          }),
          ctx,
        ),
      ),
      'ERR_BAD_SIGNATURE',
    )
  })

  test('device signature does not verify as an operator-domain signature (PAE payload type)', async () => {
    const d = await deviceKey()
    const wire = await signDeviceMessage(exampleHealthReport({ device: d.peerId }), d.key)
    const env = decode(wire)
    const { pae } = await import('../../protocols/signing/dsse.ts')
    const payload = fromBase64(env.payload)
    const pub = (await import('@libp2p/peer-id')).peerIdFromString(d.peerId).publicKey
    assert.equal(await pub?.verify(pae('application/vnd.llmesh.device+json', payload), fromBase64(env.sig)), true)
    assert.equal(await pub?.verify(pae('application/vnd.llmesh.operator+json', payload), fromBase64(env.sig)), false)
  })

  test('health reports arrive in any order; revoked and unenrolled devices refused', async () => {
    const d = await deviceKey()
    const seen = new SeqTracker()
    const c: VerifyContext = { ...ctx, highestSeq: seen.highestSeq, seenDigest: seen.seenDigest }
    const r8 = verifyEnvelope(await signDeviceMessage(exampleHealthReport({ device: d.peerId, seq: 8 }), d.key), c)
    assert.ok(r8.ok)
    seen.record(r8.message, r8.digest)
    // An earlier window's report reaching a late joiner after a later one is still evidence.
    const r7 = verifyEnvelope(await signDeviceMessage(exampleHealthReport({ device: d.peerId, seq: 7 }), d.key), c)
    assert.equal(code(r7), 'OK')
    const w = await signDeviceMessage(exampleHealthReport({ device: d.peerId, seq: 9 }), d.key)
    assert.equal(code(verifyEnvelope(w, { ...c, deviceStatus: () => 'revoked' })), 'ERR_REVOKED')
    assert.equal(code(verifyEnvelope(w, { ...c, deviceStatus: () => 'unknown' })), 'ERR_NOT_ENROLLED')
    assert.equal(code(verifyEnvelope(w, { ...c, deviceStatus: () => 'enrolled' })), 'OK')
  })

  test('device message for another fleet → ERR_WRONG_FLEET', async () => {
    const d = await deviceKey()
    const w = await signDeviceMessage(exampleHealthReport({ device: d.peerId, fleet: 'other-fleet' }), d.key)
    assert.equal(code(verifyEnvelope(w, ctx)), 'ERR_WRONG_FLEET')
  })
})
