/** protocols/verify-open.ts keeps signers' public keys imported: one import per key, bounded. */
import assert from 'node:assert/strict'
import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { test } from 'node:test'
import { ED25519_KEY_CACHE_SIZE } from '../../protocols/constants.ts'
import { ed25519PublicKey } from '../../protocols/verify-open.ts'

const rawOf = (k: ReturnType<typeof generateKeyPairSync>['publicKey']) =>
  new Uint8Array(k.export({ format: 'der', type: 'spki' }).subarray(-32))

test('the same key bytes give the same key object, other bytes another; signatures check as before', () => {
  const a = generateKeyPairSync('ed25519')
  const b = generateKeyPairSync('ed25519')
  const ra = rawOf(a.publicKey)
  // a view into a larger buffer, as a decoded envelope hands it over
  const framed = new Uint8Array(40)
  framed.set(ra, 5)
  const ka = ed25519PublicKey(ra)
  assert.equal(ed25519PublicKey(framed.subarray(5, 37)), ka, 'cached, whatever buffer holds the bytes')
  const kb = ed25519PublicKey(rawOf(b.publicKey))
  assert.notEqual(kb, ka)
  const msg = Buffer.from('payload')
  assert.equal(verify(null, msg, ka, sign(null, msg, a.privateKey)), true)
  assert.equal(verify(null, msg, ka, sign(null, msg, b.privateKey)), false, "the cached key is a's, not b's")
  assert.equal(verify(null, msg, kb, sign(null, msg, b.privateKey)), true)
})

test('the cache is bounded: past its size the oldest key is imported again', () => {
  const first = rawOf(generateKeyPairSync('ed25519').publicKey)
  const k1 = ed25519PublicKey(first)
  for (let i = 0; i < ED25519_KEY_CACHE_SIZE; i++) {
    const raw = new Uint8Array(32)
    raw[0] = 9
    new DataView(raw.buffer).setUint32(1, i)
    try {
      ed25519PublicKey(raw)
    } catch {
      // not every 32-byte string is a point; those are not cached
    }
  }
  assert.notEqual(ed25519PublicKey(first), k1, 'evicted, imported again')
  assert.equal(ed25519PublicKey(first), ed25519PublicKey(first))
})
