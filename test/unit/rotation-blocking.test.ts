/**
 * A trust-root rotation cannot be blocked: junk envelopes over the legitimate payload are refused
 * before pooling (as invalid, so gossip punishes their sender), a key counts once, and peers that
 * open pools of their own self-signed roots are held to quotas that never evict a pool signed by
 * a key of the current root. The new root is adopted as soon as its signatures are in.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { RotationPool } from '../../node/mesh/rotation-pool.ts'
import type { VerifyOutcome } from '../../node/mesh/types.ts'
import {
  canonicalBytes,
  createOperatorSigner,
  fromBase64,
  generateOperatorKey,
  nextTrustRoot,
  type OperatorSigner,
  sha256Hex,
  signTrustRoot,
  type TrustRoot,
  toBase64,
} from '../../protocols/index.ts'

const logger = silentLogger()
const newSigner = (): OperatorSigner => createOperatorSigner(generateOperatorKey().privateKeyPem)

function fleetV1(now: number): { root: TrustRoot; s1: OperatorSigner } {
  const s1 = newSigner()
  const root: TrustRoot = {
    type: 'TrustRoot',
    v: 1,
    fleet: 'rot-fleet',
    version: 1,
    keys: [s1.key],
    threshold: 1,
    created_at: now - 1000,
    auto_enroll: true,
  }
  return { root, s1 }
}

/** A copy of an envelope whose signature is junk (distinct per `i`), payload untouched. */
function junkCopy(wire: Uint8Array, i: number): Uint8Array {
  const env = JSON.parse(Buffer.from(wire).toString('utf8'))
  const sig = fromBase64(env.bundle.dsseEnvelope.signatures[0].sig)
  sig[sig.length - 1 - (i % 8)] ^= (i >> 3) + 1
  env.bundle.dsseEnvelope.signatures[0].sig = toBase64(sig)
  return canonicalBytes(env)
}

describe('trust-root rotation cannot be blocked', () => {
  for (const order of ['junk first', 'junk between the two signatures'] as const) {
    test(`31 junk copies of the first envelope's payload (${order}): refused as invalid, root v2 adopted at first delivery`, async () => {
      const now = Date.now()
      const { root, s1 } = fleetV1(now)
      const s2 = newSigner()
      const [byOld, byNew] = await signTrustRoot(nextTrustRoot(root, [s2.key], now), [s1, s2])
      const store = new MessageStore({ logger }, {})
      const verify = createFleetVerifier({ trust: root, store })
      const junk = Array.from({ length: 31 }, (_, i) => junkCopy(byOld, i))
      assert.equal(new Set(junk.map((j) => sha256Hex(j))).size, 31)
      const sendJunk = () => {
        for (const j of junk) {
          const r = verify(j, now, 'attacker') as VerifyOutcome
          assert.equal(r.ok, false)
          // invalid, not "waiting for co-signatures": gossip rejects it and the sender loses score
          assert.ok(!r.ok && ['ERR_BAD_SIGNATURE', 'ERR_SCHEMA'].includes(r.error.code), !r.ok ? r.error.code : '')
        }
      }
      if (order === 'junk first') sendJunk()
      const first = verify(byOld, now, 'seed') as { ok: boolean; error?: { code: string } }
      assert.equal(first.ok ? 'OK' : first.error?.code, 'ERR_THRESHOLD')
      if (order !== 'junk first') sendJunk()
      const second = verify(byNew, now, 'seed') as { ok: boolean }
      assert.equal(second.ok, true)
      assert.equal(verify.trust().version, 2)
    })
  }

  test('self-signed candidate roots from many peers never evict a pool signed by a current key', async () => {
    const now = Date.now()
    const { root, s1 } = fleetV1(now)
    const s2 = newSigner()
    const [byOld, byNew] = await signTrustRoot(nextTrustRoot(root, [s2.key], now), [s1, s2])
    const store = new MessageStore({ logger }, {})
    const verify = createFleetVerifier({ trust: root, store })
    const first = verify(byOld, now, 'seed') as { ok: boolean; error?: { code: string } }
    assert.equal(first.error?.code, 'ERR_THRESHOLD')
    for (let i = 0; i < 40; i++) {
      const liar = newSigner()
      const [own] = await signTrustRoot(nextTrustRoot(root, [liar.key], now + i), [liar])
      const r = verify(own, now, `sybil-${i}`) as { ok: boolean; error?: { code: string } }
      assert.equal(r.error?.code, 'ERR_THRESHOLD', 'verified against its own key: pooled, not adopted')
    }
    assert.equal((verify(byNew, now, 'seed') as { ok: boolean }).ok, true)
    assert.equal(verify.trust().version, 2)
  })

  test('pool quotas: per peer, overall, and authorized pools kept', () => {
    const pool = new RotationPool({ maxAuthorized: 2, maxUnauthorized: 3, maxPerPeer: 1 })
    const root = { version: 2 } as TrustRoot
    const b = new Uint8Array([1])
    pool.add(root, 'auth-1', 'k1', true, b, 'seed')
    pool.add(root, 'p1', 'x', false, b, 'mallory')
    pool.add(root, 'p2', 'y', false, b, 'mallory')
    assert.deepEqual(pool.size(), { authorized: 1, unauthorized: 1 }, 'one per peer')
    for (let i = 0; i < 5; i++) pool.add(root, `s${i}`, 'z', false, b, `sybil-${i}`)
    assert.deepEqual(pool.size(), { authorized: 1, unauthorized: 3 }, 'overall cap on unauthorized pools')
    // the authorized pool survived, and a key counts once
    assert.equal(pool.add(root, 'auth-1', 'k1', true, new Uint8Array([2]), 'x').length, 1)
    assert.equal(pool.add(root, 'auth-1', 'k2', false, b, 'x').length, 2)
    // an unauthorized pool turned authorized moves out of the unauthorized quota
    pool.add(root, 's4', 'k1', true, b, 'seed')
    assert.deepEqual(pool.size(), { authorized: 2, unauthorized: 2 })
    pool.settle(2)
    assert.deepEqual(pool.size(), { authorized: 0, unauthorized: 0 })
  })
})
