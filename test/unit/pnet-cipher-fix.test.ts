/**
 * The private-network cipher fix (libp2p/js-libp2p#3585): large updates are split so the shared
 * WebAssembly memory of xsalsa20 never grows, and the split is exact.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { PNET_CIPHER_WINDOW, XSalsa20 } from '../../node/mesh/pnet-cipher-fix.ts'

const key = () => new Uint8Array(randomBytes(32))
const nonce = () => new Uint8Array(randomBytes(24))

test('a large update equals the same bytes fed in small pieces (stream cipher, exact split)', () => {
  const k = key()
  const n = nonce()
  const data = new Uint8Array(randomBytes(3 * PNET_CIPHER_WINDOW + 123))
  const whole = new XSalsa20(n, k).update(data)
  const pieces = new XSalsa20(n, k)
  const out = new Uint8Array(data.length)
  for (let off = 0; off < data.length; off += 1000) {
    out.set(pieces.update(data.subarray(off, Math.min(off + 1000, data.length))), off)
  }
  assert.deepEqual(Buffer.from(whole), Buffer.from(out))
  // and decrypting restores the plaintext
  assert.deepEqual(Buffer.from(new XSalsa20(n, k).update(whole)), Buffer.from(data))
})

test('1 MiB reads interleaved with small ones on two ciphers never exhaust the WASM memory', () => {
  // The crash reproduced upstream: one update over ~640 KiB, then many small alternating updates.
  const a = new XSalsa20(nonce(), key())
  const b = new XSalsa20(nonce(), key())
  const big = new Uint8Array(1024 * 1024)
  const small = new Uint8Array(1500)
  for (let round = 0; round < 4; round++) {
    assert.equal(a.update(big).length, big.length)
    for (let i = 0; i < 1000; i++) (i % 2 === 0 ? a : b).update(small)
  }
  a.finalize()
  b.finalize()
})
