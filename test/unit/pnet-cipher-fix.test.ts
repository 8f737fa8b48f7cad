/**
 * The private-network cipher: libsodium's Salsa20 keyed by the HSalsa20 subkey gives exactly
 * xsalsa20's WebAssembly bytes (so upgraded and older nodes interoperate), at any split; and on the
 * WebAssembly path (libp2p/js-libp2p#3585) large updates are split so the shared memory never grows.
 */
import assert from 'node:assert/strict'
import { randomBytes, randomInt } from 'node:crypto'
import { test } from 'node:test'
import { PNET_CIPHER_WINDOW, sodium, XSalsa20 } from '../../node/mesh/pnet-cipher-fix.ts'

const key = () => new Uint8Array(randomBytes(32))
const nonce = () => new Uint8Array(randomBytes(24))
/** A cipher kept on the WebAssembly path (as where sodium-native cannot load). */
function wasm(n: Uint8Array, k: Uint8Array) {
  const c = new XSalsa20(n, k)
  c.__llmeshNative = null
  return c
}

test('the native cipher gives xsalsa20 WebAssembly bytes exactly, at random splits, and decrypts', () => {
  assert.ok(sodium !== null, 'sodium-native loads')
  for (let trial = 0; trial < 20; trial++) {
    const k = key()
    const n = nonce()
    const data = new Uint8Array(randomBytes(randomInt(1, 300_000)))
    const native = new XSalsa20(n, k)
    const ref = wasm(n, k)
    const a = new Uint8Array(data.length)
    const b = new Uint8Array(data.length)
    for (let off = 0; off < data.length; ) {
      const end = Math.min(data.length, off + randomInt(1, 100_000))
      a.set(native.update(data.subarray(off, end)), off)
      b.set(ref.update(data.subarray(off, end)), off)
      off = end
    }
    assert.ok(native.__llmeshNative != null, 'runs in libsodium')
    // Buffer.equals, not deepEqual: a diff of two 300 kB buffers takes minutes to print
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), `trial ${trial}: native bytes differ from WebAssembly's`)
    assert.ok(Buffer.from(new XSalsa20(n, k).update(a)).equals(Buffer.from(data)), 'decrypts')
    native.finalize()
    ref.finalize()
  }
})

test('WebAssembly path: a large update equals the same bytes fed in small pieces (exact split)', () => {
  const k = key()
  const n = nonce()
  const data = new Uint8Array(randomBytes(3 * PNET_CIPHER_WINDOW + 123))
  const whole = wasm(n, k).update(data)
  const pieces = wasm(n, k)
  const out = new Uint8Array(data.length)
  for (let off = 0; off < data.length; off += 1000) {
    out.set(pieces.update(data.subarray(off, Math.min(off + 1000, data.length))), off)
  }
  assert.deepEqual(Buffer.from(whole), Buffer.from(out))
  // and decrypting restores the plaintext
  assert.deepEqual(Buffer.from(wasm(n, k).update(whole)), Buffer.from(data))
})

test('WebAssembly path: 1 MiB reads interleaved with small ones on two ciphers never exhaust the memory', () => {
  // The crash reproduced upstream: one update over ~640 KiB, then many small alternating updates.
  const a = wasm(nonce(), key())
  const b = wasm(nonce(), key())
  const big = new Uint8Array(1024 * 1024)
  const small = new Uint8Array(1500)
  for (let round = 0; round < 4; round++) {
    assert.equal(a.update(big).length, big.length)
    for (let i = 0; i < 1000; i++) (i % 2 === 0 ? a : b).update(small)
  }
  a.finalize()
  b.finalize()
})
