import assert from 'node:assert/strict'
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { describe, test } from 'node:test'
import {
  createOperatorSigner,
  fromBase64,
  generateOperatorKey,
  operatorPayload,
  pae,
  signDeviceMessage,
  signOperatorBundle,
} from '../../protocols/index.ts'
import { deviceKey, exampleCommand, exampleHealthReport, exampleRelease } from '../fixtures/messages.ts'

describe('operator keys', () => {
  test('keyid is the sha256 of the SPKI DER; both algorithms load back from PEM', () => {
    for (const alg of ['ecdsa-p256', 'ed25519'] as const) {
      const k = generateOperatorKey(alg)
      const der = createPublicKey(k.publicKeyPem).export({ type: 'spki', format: 'der' })
      assert.equal(k.keyid, createHash('sha256').update(der).digest('hex'))
      const s = createOperatorSigner(k.privateKeyPem)
      assert.equal(s.keyid, k.keyid)
      assert.equal(s.alg, alg)
      assert.deepEqual(s.key, k.key)
    }
  })

  test('RSA keys, P-384 keys and garbage are refused', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' })
    assert.throws(() => createOperatorSigner(rsa as string), /unsupported operator key/)
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' })
    assert.throws(() => createOperatorSigner(p384 as string), /unsupported operator key/)
    assert.throws(() => createOperatorSigner('nope'), /not a PEM private key/)
  })
})

describe('DSSE and payloads', () => {
  test('PAE matches the DSSE spec example', () => {
    const out = Buffer.from(pae('http://example.com/HelloWorld', new TextEncoder().encode('hello world'))).toString()
    assert.equal(out, 'DSSEv1 29 http://example.com/HelloWorld 11 hello world')
  })

  test('payloads are canonical: key order does not change the bytes', () => {
    const a = exampleCommand()
    const b = Object.fromEntries(Object.entries(a).reverse()) as typeof a
    assert.deepEqual(operatorPayload(a).payload, operatorPayload(b).payload)
    assert.equal(operatorPayload(a).payloadType, 'application/vnd.llmesh.operator+json')
    assert.equal(operatorPayload(exampleRelease()).payloadType, 'application/vnd.in-toto+json')
  })

  test('an operator bundle has one signature and a public-key hint, no tlog, no certificate', async () => {
    const k = generateOperatorKey()
    // biome-ignore lint/suspicious/noExplicitAny: inspecting bundle JSON
    const b = (await signOperatorBundle(exampleCommand(), createOperatorSigner(k.privateKeyPem))) as Record<string, any>
    assert.equal(b.mediaType, 'application/vnd.dev.sigstore.bundle.v0.3+json')
    assert.deepEqual(b.verificationMaterial.publicKey, { hint: k.keyid })
    assert.equal(b.verificationMaterial.tlogEntries ?? undefined, undefined)
    assert.equal(b.dsseEnvelope.signatures.length, 1)
    assert.equal(b.dsseEnvelope.signatures[0].keyid, k.keyid)
  })

  test('device signatures are Ed25519 over PAE and verify with the peer id alone', async () => {
    const d = await deviceKey()
    const wire = await signDeviceMessage(exampleHealthReport({ device: d.peerId }), d.key)
    const env = JSON.parse(Buffer.from(wire).toString())
    assert.equal(env.signer, d.peerId)
    assert.equal(fromBase64(env.sig).length, 64)
    const payload = fromBase64(env.payload)
    assert.equal(
      await d.key.publicKey.verify(pae('application/vnd.llmesh.device+json', payload), fromBase64(env.sig)),
      true,
    )
  })
})
