import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  applyRootChain,
  applyRootRotation,
  canonicalBytes,
  createOperatorSigner,
  generateOperatorKey,
  nextTrustRoot,
  SeqTracker,
  signOperatorMessage,
  signTrustRoot,
  type TrustRoot,
  verifyEnvelope,
  verifyRootSelfSigned,
} from '../../protocols/index.ts'
import { DAY, exampleRelease, exampleTrustRoot, NOW } from '../fixtures/messages.ts'

function operator() {
  const k = generateOperatorKey()
  return { key: k.key, signer: createOperatorSigner(k.privateKeyPem) }
}
function code(r: { ok: boolean; error?: { code: string } }): string {
  return r.ok ? 'OK' : (r.error?.code ?? '?')
}

const old = operator()
const v1: TrustRoot = exampleTrustRoot({ keys: [old.key] })

describe('trust root rotation', () => {
  test('a rotated key is accepted: v2 signed by the old and the new key', async () => {
    const neu = operator()
    const v2 = nextTrustRoot(v1, [neu.key], NOW)
    const r = applyRootRotation(v1, await signTrustRoot(v2, [old.signer, neu.signer]), NOW)
    assert.equal(code(r), 'OK')
    assert.ok(r.ok)
    assert.equal(r.root.version, 2)
    assert.deepEqual(
      r.root.keys.map((k) => k.keyid),
      [neu.key.keyid],
    )
    // releases by the new key verify under v2 and not under v1; the old key no longer verifies under v2
    const byNew = await signOperatorMessage(exampleRelease(), neu.signer)
    assert.equal(code(verifyEnvelope(byNew, { trust: r.root, now: NOW })), 'OK')
    assert.equal(code(verifyEnvelope(byNew, { trust: v1, now: NOW })), 'ERR_UNKNOWN_SIGNER')
    const byOld = await signOperatorMessage(exampleRelease(), old.signer)
    assert.equal(code(verifyEnvelope(byOld, { trust: r.root, now: NOW })), 'ERR_UNKNOWN_SIGNER')
  })

  test('an unrotated foreign key is refused', async () => {
    const foreign = operator()
    const v2 = nextTrustRoot(v1, [foreign.key], NOW)
    assert.equal(code(applyRootRotation(v1, await signTrustRoot(v2, [foreign.signer]), NOW)), 'ERR_THRESHOLD')
    const rel = await signOperatorMessage(exampleRelease(), foreign.signer)
    assert.equal(code(verifyEnvelope(rel, { trust: v1, now: NOW })), 'ERR_UNKNOWN_SIGNER')
  })

  test('a rotation signed only by the old key is refused (the new key must sign too)', async () => {
    const neu = operator()
    const v2 = nextTrustRoot(v1, [neu.key], NOW)
    assert.equal(code(applyRootRotation(v1, await signTrustRoot(v2, [old.signer]), NOW)), 'ERR_THRESHOLD')
  })

  test('a rotation with a lower or equal version is refused (rollback)', async () => {
    const neu = operator()
    const v3 = { ...nextTrustRoot(v1, [old.key], NOW), version: 3 }
    const cur = applyRootChain(v1, [await signTrustRoot(nextTrustRoot(v1, [old.key], NOW), [old.signer])], NOW)
    assert.ok(cur.ok)
    const lower = { ...nextTrustRoot(v1, [neu.key], NOW), version: 1 }
    assert.equal(
      code(applyRootRotation(cur.root, await signTrustRoot(lower, [old.signer, neu.signer]), NOW)),
      'ERR_ROLLBACK',
    )
    const same = { ...nextTrustRoot(v1, [neu.key], NOW), version: 2 }
    assert.equal(
      code(applyRootRotation(cur.root, await signTrustRoot(same, [old.signer, neu.signer]), NOW)),
      'ERR_ROLLBACK',
    )
    // skipping a version is refused too: intermediate roots are applied in order
    assert.equal(code(applyRootRotation(v1, await signTrustRoot(v3, [old.signer]), NOW)), 'ERR_SCHEMA')
  })

  test('mix-and-match: envelopes over different roots do not add up', async () => {
    const neu = operator()
    const a = nextTrustRoot(v1, [neu.key], NOW)
    const b = { ...a, auto_enroll: false }
    const wire = [...(await signTrustRoot(a, [old.signer])), ...(await signTrustRoot(b, [neu.signer]))]
    assert.equal(code(applyRootRotation(v1, wire, NOW)), 'ERR_SCHEMA')
  })

  test('threshold 2 of 3: one old signature is not enough, two are', async () => {
    const ks = [operator(), operator(), operator()]
    const root: TrustRoot = exampleTrustRoot({ keys: ks.map((k) => k.key), threshold: 2 })
    const next = nextTrustRoot(
      root,
      ks.map((k) => k.key),
      NOW,
      { threshold: 2 },
    )
    assert.equal(code(applyRootRotation(root, await signTrustRoot(next, [ks[0].signer]), NOW)), 'ERR_THRESHOLD')
    // the same key twice counts once
    const once = await signTrustRoot(next, [ks[0].signer])
    assert.equal(code(applyRootRotation(root, [...once, ...once], NOW)), 'ERR_THRESHOLD')
    assert.equal(code(applyRootRotation(root, await signTrustRoot(next, [ks[0].signer, ks[2].signer]), NOW)), 'OK')
  })

  test('an expired new root is refused (freeze); an expired current root can still rotate', async () => {
    const neu = operator()
    const expiredNext = nextTrustRoot(v1, [neu.key], NOW - 2 * DAY, { expiresAt: NOW - DAY })
    assert.equal(
      code(applyRootRotation(v1, await signTrustRoot(expiredNext, [old.signer, neu.signer]), NOW)),
      'ERR_EXPIRED',
    )
    const frozen = { ...v1, expires_at: NOW - 1 }
    const next = nextTrustRoot(frozen, [neu.key], NOW, { expiresAt: NOW + DAY })
    assert.equal(code(applyRootRotation(frozen, await signTrustRoot(next, [old.signer, neu.signer]), NOW)), 'OK')
  })

  test('a root for another fleet is refused', async () => {
    const neu = operator()
    const v2 = { ...nextTrustRoot(v1, [neu.key], NOW), fleet: 'other-fleet' }
    assert.equal(code(applyRootRotation(v1, await signTrustRoot(v2, [old.signer, neu.signer]), NOW)), 'ERR_WRONG_FLEET')
  })

  test('a chain v1 → v2 → v3 applies in order; the old key of v1 cannot sign v3', async () => {
    const k2 = operator()
    const k3 = operator()
    const v2 = nextTrustRoot(v1, [k2.key], NOW)
    const v3 = nextTrustRoot(v2, [k3.key], NOW)
    const chain = [await signTrustRoot(v2, [old.signer, k2.signer]), await signTrustRoot(v3, [k2.signer, k3.signer])]
    const r = applyRootChain(v1, chain, NOW)
    assert.ok(r.ok)
    assert.equal(r.root.version, 3)
    const wrong = [chain[0], await signTrustRoot(v3, [old.signer, k3.signer])]
    assert.equal(code(applyRootChain(v1, wrong, NOW)), 'ERR_THRESHOLD')
  })

  test('garbage and non-root envelopes are refused without throwing', async () => {
    assert.equal(code(applyRootRotation(v1, [], NOW)), 'ERR_SCHEMA')
    assert.equal(code(applyRootRotation(v1, [new Uint8Array([1, 2, 3])], NOW)), 'ERR_SCHEMA')
    const rel = await signOperatorMessage(exampleRelease(), old.signer)
    assert.equal(code(applyRootRotation(v1, [rel], NOW)), 'ERR_SCHEMA')
    assert.equal(code(applyRootRotation(v1, [canonicalBytes({ kind: 'operator' })], NOW)), 'ERR_SCHEMA')
  })

  test('verifyRootSelfSigned: a first root signed by its own key; a root signed by another key is refused', async () => {
    assert.equal(code(verifyRootSelfSigned(await signTrustRoot(v1, [old.signer]), NOW)), 'OK')
    assert.equal(code(verifyRootSelfSigned(await signTrustRoot(v1, [operator().signer]), NOW)), 'ERR_THRESHOLD')
  })
})

describe('SeqTracker', () => {
  test('keeps the highest sequence per (type, key) and round-trips through entries()', () => {
    const t = new SeqTracker()
    assert.equal(t.record(exampleRelease({ seq: 2 }), 'd2'), true)
    assert.equal(t.record(exampleRelease({ seq: 1 }), 'd1'), false)
    assert.equal(t.highestSeq('ReleaseManifest', 'tiny-llama'), 2)
    assert.equal(t.seenDigest('ReleaseManifest', 'tiny-llama'), 'd2')
    assert.equal(t.highestSeq('ReleaseManifest', 'other'), undefined)
    const back = SeqTracker.from(t.entries())
    assert.equal(back.highestSeq('ReleaseManifest', 'tiny-llama'), 2)
  })
})
