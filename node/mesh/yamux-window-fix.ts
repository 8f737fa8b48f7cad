/**
 * yamux window updates once half a stream's window is used, not after every data frame.
 *
 * @chainsafe/libp2p-yamux (8.0.1) answers every data frame a stream receives with a window update
 * frame: 12 bytes that each pass through Noise, pnet and a socket write on the receiver and a read,
 * pnet, Noise and yamux on the sender. In the devices' CPU profiles of the 20 Mbit/s fan-out
 * `sendWindowUpdate` was ≈ 7 % of their samples (docs/benchmarks.md, "at 20 Mbit/s: eleventh
 * pass"). hashicorp's go-yamux and rust-yamux send an update only once the receiver has taken at
 * least half of its window, which this does: a stream that is established (an update would carry
 * no SYN or ACK flag) skips the update while less than half of its receive window is used. The
 * sender then still holds at least half a window of credit, so it never waits for an update it
 * would have had before by more than that half (YAMUX_STREAM_WINDOW / 2 = 512 KiB in flight).
 * Opening (SYN, ACK) and paused streams, and the window's growth (decided when an update is due),
 * keep the upstream code; a resumed stream grants window back under the same half-window rule (its
 * sender still holds at least half a window). Same frames on the wire, fewer of them: peers
 * without it interoperate.
 *
 * Importing this module applies it once (node/mesh/muxer.ts imports it).
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/** The fields of a yamux stream this reads (private in its typings). */
interface WindowFields {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
}

type StreamProto = { sendWindowUpdate: () => void } & {
  /** Set on the prototype once patched. */
  __llmeshHalfWindow?: true
}

/** Whether `s` owes its peer no window update yet: established, and less than half its window used. */
export function updateNotDue(s: WindowFields): boolean {
  if (s.state !== StreamState.Established) return false // SYN/ACK to send, paused, or closing: upstream decides
  return s.recvWindow - s.recvWindowCapacity < s.recvWindow / 2
}

const proto = YamuxStream.prototype as unknown as StreamProto
if (proto.__llmeshHalfWindow !== true) {
  const sendWindowUpdate = proto.sendWindowUpdate
  proto.sendWindowUpdate = function halfWindowUpdate(this: WindowFields) {
    if (updateNotDue(this)) return
    sendWindowUpdate.call(this)
  }
  proto.__llmeshHalfWindow = true
}
