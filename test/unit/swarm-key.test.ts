import assert from 'node:assert/strict'
import { createPublicKey } from 'node:crypto'
import { createRequire } from 'node:module'
import { describe, test } from 'node:test'
import {
  createOperatorSigner,
  generateOperatorKey,
  SeqTracker,
  SwarmKeyRotation,
  signOperatorMessage,
  verifyEnvelope,
} from '../../protocols/index.ts'
import {
  buildSwarmKeyRotation,
  checkRotation,
  openSwarmKey,
  SWARM_KEY_MAX_SWITCH_DELAY_MS,
  SwarmKeyError,
  swarmKeyFile,
  swarmKeyOfFile,
} from '../../protocols/swarm-key/index.ts'
import {
  ed25519PublicToX25519,
  ed25519SecretToX25519,
  x25519PrivateKey,
  x25519Raw,
} from '../../protocols/swarm-key/x25519.ts'
import { deviceKey, exampleOperator, FLEET, NOW } from '../fixtures/messages.ts'

const code = (fn: () => unknown): string => {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof SwarmKeyError, `not a SwarmKeyError: ${err}`)
    return err.code
  }
  assert.fail('did not throw')
}

describe('swarm key: sealing to each device', () => {
  test('each recipient opens the same new key; it matches key_id', async () => {
    const a = await deviceKey()
    const b = await deviceKey()
    const { rotation, key } = buildSwarmKeyRotation({ fleet: FLEET, epoch: 1, devices: [a.peerId, b.peerId], now: NOW })
    assert.equal(SwarmKeyRotation.safeParse(rotation).success, true)
    assert.equal(rotation.recipients.length, 2)
    assert.deepEqual(openSwarmKey(rotation, a.peerId, a.key.raw), key)
    assert.deepEqual(openSwarmKey(rotation, b.peerId, b.key.raw), key)
    // two boxes of one key differ (ephemeral keys)
    assert.notEqual(rotation.recipients[0].sealed, rotation.recipients[1].sealed)
  })

  test('a device not in the recipient list cannot open it, even with another entry', async () => {
    const a = await deviceKey()
    const outsider = await deviceKey()
    const { rotation } = buildSwarmKeyRotation({ fleet: FLEET, epoch: 1, devices: [a.peerId], now: NOW })
    assert.equal(
      code(() => openSwarmKey(rotation, outsider.peerId, outsider.key.raw)),
      'ERR_NOT_RECIPIENT',
    )
    // the outsider relabels a's box as its own: bound to the device, it does not open
    const stolen = { ...rotation, recipients: [{ ...rotation.recipients[0], device: outsider.peerId }] }
    assert.equal(
      code(() => openSwarmKey(stolen, outsider.peerId, outsider.key.raw)),
      'ERR_SEALED_KEY',
    )
    // and a's own box does not open with the outsider's key under a's name
    assert.equal(
      code(() => openSwarmKey(rotation, a.peerId, outsider.key.raw)),
      'ERR_SEALED_KEY',
    )
  })

  test('a box moved to another epoch or tampered with does not open; a wrong key_id is caught', async () => {
    const a = await deviceKey()
    const { rotation } = buildSwarmKeyRotation({ fleet: FLEET, epoch: 3, devices: [a.peerId], now: NOW })
    assert.equal(
      code(() => openSwarmKey({ ...rotation, epoch: 4 }, a.peerId, a.key.raw)),
      'ERR_SEALED_KEY',
    )
    const box = Buffer.from(rotation.recipients[0].sealed, 'base64')
    box[40] ^= 1
    const tampered = { ...rotation, recipients: [{ device: a.peerId, sealed: box.toString('base64') }] }
    assert.equal(
      code(() => openSwarmKey(tampered, a.peerId, a.key.raw)),
      'ERR_SEALED_KEY',
    )
    assert.equal(
      code(() => openSwarmKey({ ...rotation, key_id: 'f'.repeat(64) }, a.peerId, a.key.raw)),
      'ERR_KEY_MISMATCH',
    )
  })

  test('the Ed25519 → X25519 conversion is libsodium’s (when sodium-native is installed)', async (t) => {
    let sodium: Record<string, (...a: Buffer[]) => void>
    try {
      sodium = createRequire(import.meta.url)('sodium-native')
    } catch {
      t.skip('sodium-native is not installed')
      return
    }
    for (let i = 0; i < 8; i++) {
      const pk = Buffer.alloc(32)
      const sk = Buffer.alloc(64)
      sodium.crypto_sign_keypair(pk, sk)
      const cpk = Buffer.alloc(32)
      const csk = Buffer.alloc(32)
      sodium.crypto_sign_ed25519_pk_to_curve25519(cpk, pk)
      sodium.crypto_sign_ed25519_sk_to_curve25519(csk, sk)
      assert.deepEqual(Buffer.from(ed25519PublicToX25519(pk) as Uint8Array), cpk)
      assert.deepEqual(Buffer.from(ed25519SecretToX25519(sk)), csk)
      assert.deepEqual(Buffer.from(x25519Raw(createPublicKey(x25519PrivateKey(csk)))), cpk)
    }
  })
})

describe('swarm key: rotation messages', () => {
  test('epochs only move up; a switch time before issue or too far ahead, or a device twice, is refused', async () => {
    const a = await deviceKey()
    const { rotation } = buildSwarmKeyRotation({
      fleet: FLEET,
      epoch: 2,
      devices: [a.peerId],
      now: NOW,
      switchAt: NOW + 30_000,
    })
    checkRotation(rotation, 1)
    assert.equal(
      code(() => checkRotation(rotation, 2)),
      'ERR_STALE_EPOCH',
    )
    assert.equal(
      code(() => checkRotation(rotation, 5)),
      'ERR_STALE_EPOCH',
    )
    assert.equal(
      code(() => checkRotation({ ...rotation, switch_at: NOW - 1 }, 1)),
      'ERR_SWARM_KEY',
    )
    const far = { ...rotation, switch_at: NOW + SWARM_KEY_MAX_SWITCH_DELAY_MS + 1 }
    assert.equal(
      code(() => checkRotation(far, 1)),
      'ERR_SWARM_KEY',
    )
    const twice = { ...rotation, recipients: [rotation.recipients[0], rotation.recipients[0]] }
    assert.equal(
      code(() => checkRotation(twice, 1)),
      'ERR_SWARM_KEY',
    )
  })

  test('the operator-signed message verifies; one signed by another key is refused; a lower epoch is a rollback', async () => {
    const { op, root } = exampleOperator()
    const signer = createOperatorSigner(op.privateKeyPem)
    const a = await deviceKey()
    const { rotation } = buildSwarmKeyRotation({ fleet: FLEET, epoch: 2, devices: [a.peerId], now: NOW })
    const seq = new SeqTracker()
    const ctx = { trust: root, now: NOW, highestSeq: seq.highestSeq, seenDigest: seq.seenDigest }
    const wire = await signOperatorMessage(rotation, signer)
    const ok = verifyEnvelope(wire, ctx)
    assert.equal(ok.ok, true)
    if (ok.ok) seq.record(ok.message, ok.digest)

    const intruder = createOperatorSigner(generateOperatorKey().privateKeyPem)
    const forged = verifyEnvelope(await signOperatorMessage({ ...rotation, epoch: 3 }, intruder), ctx)
    assert.equal(forged.ok, false)
    if (!forged.ok) assert.equal(forged.error.code, 'ERR_UNKNOWN_SIGNER')

    const older = buildSwarmKeyRotation({ fleet: FLEET, epoch: 1, devices: [a.peerId], now: NOW }).rotation
    const back = verifyEnvelope(await signOperatorMessage(older, signer), ctx)
    assert.equal(back.ok, false)
    if (!back.ok) assert.equal(back.error.code, 'ERR_ROLLBACK')
  })

  test('schema bounds: no recipients, a malformed box, a non-Ed25519 peer id', async () => {
    const a = await deviceKey()
    const { rotation } = buildSwarmKeyRotation({ fleet: FLEET, epoch: 1, devices: [a.peerId], now: NOW })
    assert.equal(SwarmKeyRotation.safeParse({ ...rotation, recipients: [] }).success, false)
    const bad = { ...rotation, recipients: [{ device: a.peerId, sealed: 'AAAA' }] }
    assert.equal(SwarmKeyRotation.safeParse(bad).success, false)
    assert.equal(SwarmKeyRotation.safeParse({ ...rotation, epoch: 0 }).success, false)
    assert.equal(
      code(() => buildSwarmKeyRotation({ fleet: FLEET, epoch: 1, devices: ['QmNotAKey'], now: NOW })),
      'ERR_SWARM_KEY',
    )
  })

  test('swarm key files round-trip and junk is refused', () => {
    const key = new Uint8Array(32).fill(7)
    const file = swarmKeyFile(key)
    assert.equal(file.length, 95)
    assert.deepEqual(swarmKeyOfFile(file), key)
    assert.equal(
      code(() => swarmKeyOfFile(Buffer.from('/key/swarm/psk/1.0.0/\n/base16/\nzz'))),
      'ERR_SWARM_KEY',
    )
  })
})
