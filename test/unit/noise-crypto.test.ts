/**
 * libp2p Noise's crypto on libsodium (node/mesh/noise-crypto.ts) against the package's own pure-JS
 * crypto: the same bytes both ways at every size (so a node with it talks to one without), in-place
 * decryption into noise's view of the message and its spanning copy, refusal of any altered byte,
 * and the same X25519 keys and secrets.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { pureJsCrypto } from '@chainsafe/libp2p-noise'
import { Uint8ArrayList } from 'uint8arraylist'
import { noiseCrypto, sodiumNoiseCrypto as ours } from '../../node/mesh/noise-crypto.ts'

const SIZES = [0, 1, 100, 1199, 1200, 4096, 65_519]
const key = randomBytes(32)
const nonce = randomBytes(12)
const ad = randomBytes(32)
const bytes = (b: Uint8Array | Uint8ArrayList) => Buffer.from(b instanceof Uint8Array ? b : b.subarray())

describe('noise crypto on libsodium', () => {
  test('is used where sodium-native loads', () => {
    assert.equal(noiseCrypto(), ours)
  })

  test('encrypts and decrypts the same bytes as the pure-JS crypto, both ways, at every size', () => {
    for (const n of SIZES) {
      const m = randomBytes(n)
      for (const a of [ad, new Uint8Array(0)]) {
        const theirs = bytes(pureJsCrypto.chaCha20Poly1305Encrypt(m, nonce, a, key))
        assert.deepEqual(bytes(ours.chaCha20Poly1305Encrypt(m, nonce, a, key)), theirs, `encrypt ${n}`)
        assert.deepEqual(bytes(ours.chaCha20Poly1305Decrypt(theirs, nonce, a, key)), m, `decrypt ${n}`)
        const mine = bytes(
          ours.chaCha20Poly1305Encrypt(new Uint8ArrayList(m.subarray(0, n >> 1), m.subarray(n >> 1)), nonce, a, key),
        )
        assert.deepEqual(bytes(pureJsCrypto.chaCha20Poly1305Decrypt(mine, nonce, a, key)), m, `theirs decrypt ${n}`)
      }
    }
  })

  test('decrypts in place into the view noise passes, into its spanning copy, or into a plain output buffer', () => {
    const m = randomBytes(60_000)
    const wire = bytes(pureJsCrypto.chaCha20Poly1305Encrypt(m, nonce, ad, key))
    // a view of the message itself (noise: the message within one socket read)
    const inPlace = Buffer.from(wire)
    const view = inPlace.subarray(0, m.length)
    const out = ours.chaCha20Poly1305Decrypt(inPlace, nonce, ad, key, view)
    assert.equal(out, view)
    assert.deepEqual(bytes(out), m)
    // a message spanning three reads: noise's dst is a copy of the bytes without the tag
    const list = new Uint8ArrayList(wire.subarray(0, 1000), wire.subarray(1000, 59_990), wire.subarray(59_990))
    const copy = list.subarray(0, m.length)
    assert.deepEqual(bytes(ours.chaCha20Poly1305Decrypt(list, nonce, ad, key, copy)), m)
    // a caller's output buffer that does not hold the message: filled first, the input untouched
    const dst = new Uint8Array(m.length)
    const input = Buffer.from(wire)
    assert.deepEqual(bytes(ours.chaCha20Poly1305Decrypt(input, nonce, ad, key, dst)), m)
    assert.deepEqual(input, wire)
  })

  test('refuses a ciphertext with any byte altered, and a message shorter than its tag', () => {
    const m = randomBytes(5000)
    const wire = bytes(ours.chaCha20Poly1305Encrypt(m, nonce, ad, key))
    for (const at of [0, 2500, wire.length - 17, wire.length - 16, wire.length - 1]) {
      const bad = Buffer.from(wire)
      bad[at] ^= 0x01
      assert.throws(() => ours.chaCha20Poly1305Decrypt(bad, nonce, ad, key, bad.subarray(0, m.length)), /Invalid/)
    }
    assert.throws(() => ours.chaCha20Poly1305Decrypt(wire, nonce, randomBytes(32), key), /Invalid/, 'other ad')
    assert.throws(() => ours.chaCha20Poly1305Decrypt(randomBytes(15), nonce, ad, key), /Invalid/)
  })

  test('X25519: the same public keys and shared secrets as the pure-JS crypto; SHA-256 over a list', () => {
    const seed = randomBytes(32)
    assert.deepEqual(
      bytes(ours.generateX25519KeyPairFromSeed(seed).publicKey),
      bytes(pureJsCrypto.generateX25519KeyPairFromSeed(seed).publicKey),
    )
    const a = ours.generateX25519KeyPair()
    const b = pureJsCrypto.generateX25519KeyPair()
    assert.deepEqual(
      bytes(ours.generateX25519SharedKey(a.privateKey, b.publicKey)),
      bytes(pureJsCrypto.generateX25519SharedKey(b.privateKey, a.publicKey)),
    )
    const data = randomBytes(3000)
    const list = new Uint8ArrayList(data.subarray(0, 7), data.subarray(7))
    assert.deepEqual(bytes(ours.hashSHA256(list)), bytes(pureJsCrypto.hashSHA256(data)))
  })
})
