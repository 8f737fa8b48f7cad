/**
 * yamux window updates at half a window, not after every data frame (@chainsafe/libp2p-yamux 8).
 *
 * Why: the package's `YamuxStream.sendWindowUpdate` runs after each data frame it receives and sends
 * a WINDOW_UPDATE whenever any of the window was used, i.e. one 12-byte frame back per data frame
 * (≤ 64 KiB): 4,096 of them for a 256 MiB model, each its own Noise message and socket write on the
 * receiver and a decrypt and parse on the sender. Profiled on a device's fetch that was ≈ 8 % of its
 * main thread in socket writes alone (docs/benchmarks.md, "the GC with large blocks"). Go's yamux
 * (hashicorp/yamux, and libp2p's go-yamux) sends an update only once the returned credit is at least
 * half the window; this does the same. The sender then still holds at least half a window of credit
 * whenever an update is held back, so it never stalls; what goes on the wire is the same protocol,
 * only fewer, larger updates, so patched and unpatched nodes interoperate. Updates that carry flags
 * (SYN/ACK of a new stream), and a paused stream's bookkeeping, are the package's code unchanged.
 *
 * Importing this module applies it once (node/mesh/host.ts imports it).
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/** The fields of a yamux stream this fix reads (the package's own, public in its JavaScript). */
interface WindowState {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
}

const PATCHED = Symbol.for('llmesh.yamuxWindowFix')
const proto = YamuxStream.prototype as unknown as Record<PropertyKey, unknown> & { sendWindowUpdate(): void }

/**
 * Whether an established stream's window update is held back: less than half the window's credit
 * to return. Exported for the unit test.
 */
export function holdWindowUpdate(recvWindow: number, recvWindowCapacity: number): boolean {
  return recvWindow - recvWindowCapacity < recvWindow / 2
}

if (proto[PATCHED] !== true && typeof proto.sendWindowUpdate === 'function') {
  const original = proto.sendWindowUpdate
  // other states (a SYN or ACK still to send, paused, finished) take the package's path unchanged
  proto.sendWindowUpdate = function (this: WindowState) {
    if (this.state === StreamState.Established && holdWindowUpdate(this.recvWindow, this.recvWindowCapacity)) return
    original.call(this)
  }
  proto[PATCHED] = true
}
