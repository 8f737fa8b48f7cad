/**
 * Workaround for libp2p/js-libp2p#3585 (merged upstream, not yet in @libp2p/pnet 3.0.27, the newest
 * on the registry): the private-network cipher, xsalsa20@1.2.0, grows its shared WebAssembly memory
 * for any single update larger than ~640 KiB, and after a grow every other cipher's view of that
 * memory is detached, so each grows it again on its next update until
 * `WebAssembly.Memory.grow(): Maximum memory size exceeded` is thrown from a socket's data handler
 * — an uncaught exception that takes the daemon down under bulk transfers (model chunks).
 *
 * As the upstream fix does, the cipher is fed at most 64 KiB at a time, so the memory never grows.
 * Splitting an update into consecutive updates is exact: XSalsa20 is a stream cipher.
 * Importing this module applies the fix once (node/mesh/host.ts imports it).
 */
import { createRequire } from 'node:module'

/** Largest slice handed to the cipher in one update. */
export const PNET_CIPHER_WINDOW = 64 * 1024

interface XSalsa20Class {
  new (nonce: Uint8Array, key: Uint8Array): XSalsa20Instance
  prototype: XSalsa20Instance & { __llmeshWindowed?: boolean }
}
interface XSalsa20Instance {
  update(input: Uint8Array, output?: Uint8Array): Uint8Array
  finalize(): void
}

const require = createRequire(import.meta.url)
/** The xsalsa20 class exactly as @libp2p/pnet resolves it. */
export const XSalsa20 = createRequire(require.resolve('@libp2p/pnet'))('xsalsa20') as XSalsa20Class

if (XSalsa20.prototype.__llmeshWindowed !== true) {
  const update = XSalsa20.prototype.update
  XSalsa20.prototype.update = function windowedUpdate(input: Uint8Array, output?: Uint8Array): Uint8Array {
    if (input.length <= PNET_CIPHER_WINDOW) return update.call(this, input, output)
    const out = output ?? new Uint8Array(input.length)
    for (let off = 0; off < input.length; off += PNET_CIPHER_WINDOW) {
      const end = Math.min(off + PNET_CIPHER_WINDOW, input.length)
      update.call(this, input.subarray(off, end), out.subarray(off, end))
    }
    return out
  }
  XSalsa20.prototype.__llmeshWindowed = true
}
