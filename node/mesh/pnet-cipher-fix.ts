/**
 * The private-network cipher (@libp2p/pnet's XSalsa20, package xsalsa20@1.2.0), made native and safe.
 *
 * Native: xsalsa20 runs XSalsa20 in WebAssembly, one copy in and one out of its memory per update;
 * on a model transfer it was ≈ 18 % of a seed's CPU and made a device's fetch ≈ 40 % dearer than
 * without pnet (docs/benchmarks.md). Each cipher now derives the XSalsa20 subkey once (HSalsa20 of
 * the key and the nonce's first 16 bytes, xsalsa20's own JS function) and runs Salsa20 with the
 * nonce's last 8 bytes in libsodium (sodium-native, which hypercore already loads), at the block
 * counter of the stream's offset: that is XSalsa20's definition, so the bytes on the wire are
 * identical and an upgraded node talks to one that is not.
 *
 * Safe (where sodium-native cannot load, the WebAssembly path stays): workaround for
 * libp2p/js-libp2p#3585 (merged upstream, not yet in @libp2p/pnet 3.0.27, the newest on the
 * registry): xsalsa20 grows its shared WebAssembly memory for any single update larger than
 * ~640 KiB, and after a grow every other cipher's view of that memory is detached, so each grows it
 * again on its next update until `WebAssembly.Memory.grow(): Maximum memory size exceeded` is thrown
 * from a socket's data handler — an uncaught exception that takes the daemon down under bulk
 * transfers (model chunks). As the upstream fix does, the cipher is fed at most 64 KiB at a time, so
 * the memory never grows. Splitting an update into consecutive updates is exact: XSalsa20 is a
 * stream cipher.
 *
 * Importing this module applies both once (node/mesh/host.ts imports it).
 */
import { createRequire } from 'node:module'

/** Largest slice handed to the WebAssembly cipher in one update. */
export const PNET_CIPHER_WINDOW = 64 * 1024

/** The cipher state xsalsa20 keeps in WebAssembly memory (key and nonce at these offsets). */
interface WasmState {
  _memory?: Uint8Array
  _nonce?: number
  _key?: number
  finalize(): void
}
/** A cipher running in libsodium: Salsa20 keyed by the HSalsa20 subkey, at stream offset `offset`. */
interface NativeState {
  subkey: Uint8Array
  nonce: Uint8Array
  offset: number
}
interface XSalsa20Instance {
  update(input: Uint8Array, output?: Uint8Array): Uint8Array
  finalize(): void
  _xor?: WasmState | null
  /** The native state, null when this cipher stays in WebAssembly; unset before its first update. */
  __llmeshNative?: NativeState | null
}
interface XSalsa20Class {
  new (nonce: Uint8Array, key: Uint8Array): XSalsa20Instance
  prototype: XSalsa20Instance & { __llmeshWindowed?: boolean }
  core_hsalsa20(out: Uint8Array, nonce: Uint8Array, key: Uint8Array, sigma: Uint8Array): void
  SIGMA: Uint8Array
}
interface Sodium {
  crypto_stream_salsa20_xor_ic(c: Uint8Array, m: Uint8Array, n: Uint8Array, ic: number, k: Uint8Array): void
}

const require = createRequire(import.meta.url)
/** The xsalsa20 class exactly as @libp2p/pnet resolves it. */
export const XSalsa20 = createRequire(require.resolve('@libp2p/pnet'))('xsalsa20') as XSalsa20Class

/** libsodium, or null where it cannot load (then every cipher stays in WebAssembly). */
export const sodium: Sodium | null = (() => {
  try {
    return require('sodium-native') as Sodium
  } catch {
    return null
  }
})()

/** Moves a fresh cipher to libsodium: reads its key and nonce back, frees its WebAssembly slot. */
function toNative(x: XSalsa20Instance): NativeState | null {
  const w = x._xor
  if (sodium === null || w == null || w._memory === undefined || w._nonce === undefined || w._key === undefined) {
    return null
  }
  if (w._memory.byteLength < w._key + 32) return null // detached view: leave it to WebAssembly
  const nonce = w._memory.slice(w._nonce, w._nonce + 24)
  const key = w._memory.slice(w._key, w._key + 32)
  const subkey = new Uint8Array(32)
  XSalsa20.core_hsalsa20(subkey, nonce, key, XSalsa20.SIGMA)
  key.fill(0)
  w.finalize()
  x._xor = { finalize: () => {} }
  return { subkey, nonce: nonce.slice(16, 24), offset: 0 }
}

/** XSalsa20 over `input` at the state's offset (a partial first block is padded, then cut off). */
function nativeUpdate(s: Sodium, st: NativeState, input: Uint8Array, output?: Uint8Array): Uint8Array {
  const out = output ?? new Uint8Array(input.length)
  const skip = st.offset % 64
  const counter = Math.floor(st.offset / 64)
  if (skip === 0) {
    s.crypto_stream_salsa20_xor_ic(out, input, st.nonce, counter, st.subkey)
  } else {
    const buf = new Uint8Array(skip + input.length)
    buf.set(input, skip)
    s.crypto_stream_salsa20_xor_ic(buf, buf, st.nonce, counter, st.subkey)
    out.set(buf.subarray(skip))
  }
  st.offset += input.length
  return out
}

if (XSalsa20.prototype.__llmeshWindowed !== true) {
  const update = XSalsa20.prototype.update
  const finalize = XSalsa20.prototype.finalize
  XSalsa20.prototype.update = function pnetUpdate(input: Uint8Array, output?: Uint8Array): Uint8Array {
    if (this.__llmeshNative === undefined) this.__llmeshNative = toNative(this)
    if (this.__llmeshNative !== null && sodium !== null) return nativeUpdate(sodium, this.__llmeshNative, input, output)
    if (input.length <= PNET_CIPHER_WINDOW) return update.call(this, input, output)
    const out = output ?? new Uint8Array(input.length)
    for (let off = 0; off < input.length; off += PNET_CIPHER_WINDOW) {
      const end = Math.min(off + PNET_CIPHER_WINDOW, input.length)
      update.call(this, input.subarray(off, end), out.subarray(off, end))
    }
    return out
  }
  XSalsa20.prototype.finalize = function pnetFinalize(): void {
    this.__llmeshNative?.subkey.fill(0)
    finalize.call(this)
  }
  XSalsa20.prototype.__llmeshWindowed = true
}
