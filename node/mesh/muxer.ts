/**
 * The stream muxer of every llmesh host (node/mesh/host.ts) and of the distribution benchmark's
 * hosts (bench/distribution-host.ts): yamux with the stream window of `YAMUX_STREAM_WINDOW`, and
 * window updates once half of it is used (yamux-window-fix.ts).
 */
import { yamux } from '@chainsafe/libp2p-yamux'
import { YAMUX_STREAM_WINDOW } from './constants.ts'
import './yamux-window-fix.ts'

/** yamux as llmesh runs it. */
export function meshMuxer(): ReturnType<typeof yamux> {
  return yamux({ streamOptions: { initialStreamWindowSize: YAMUX_STREAM_WINDOW } })
}
