/**
 * Preload (`NODE_OPTIONS=--import=…/bench/pnet-window-fix.ts`) used by bench/fanout.ts to show the
 * swarm with the fix of libp2p/js-libp2p#3585 applied: xsalsa20 (the pnet cipher) is fed at most
 * 64 KiB at a time, so its shared WASM memory never grows. xsalsa20@1.2.0 grows that memory for any
 * input larger than ~640 KiB and, after a grow, every other cipher's view of it is detached, so each
 * of them grows it again on its next update until `WebAssembly.Memory.grow(): Maximum memory size
 * exceeded` is thrown from the socket's data handler (an uncaught exception in the daemon).
 * Splitting an update into consecutive updates is exact: the cipher is a stream.
 */
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const pnetDir = require.resolve('@libp2p/pnet')
const XSalsa20 = createRequire(pnetDir)('xsalsa20') as {
  prototype: { update(input: Uint8Array, output?: Uint8Array): Uint8Array }
}
const WINDOW = 64 * 1024
const update = XSalsa20.prototype.update
XSalsa20.prototype.update = function (input: Uint8Array, output?: Uint8Array): Uint8Array {
  if (input.length <= WINDOW) return update.call(this, input, output)
  const out = output ?? new Uint8Array(input.length)
  for (let off = 0; off < input.length; off += WINDOW) {
    const end = Math.min(off + WINDOW, input.length)
    update.call(this, input.subarray(off, end), out.subarray(off, end))
  }
  return out
}
