/**
 * The hosts' stream muxer (node/mesh/muxer.ts): yamux opens every stream with a receive window of
 * `YAMUX_STREAM_WINDOW`, so a sender may have that much in flight before a window update (yamux's
 * own growth never triggers under load; see the constant).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { YAMUX_STREAM_WINDOW } from '../../node/mesh/constants.ts'
import { meshMuxer } from '../../node/mesh/muxer.ts'
import { meshNoise } from '../../node/mesh/noise-crypto.ts'
import { scaled, waitFor } from '../helpers/index.ts'

const PROTOCOL = '/llmesh-test/window/1'

async function host() {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [meshNoise()],
    streamMuxers: [meshMuxer()],
  })
}

describe('mesh muxer', () => {
  test('a stream starts with the larger window each way', { timeout: scaled(30_000) }, async (t) => {
    assert.ok(YAMUX_STREAM_WINDOW > 256 * 1024, "larger than yamux's default")
    const a = await host()
    t.after(() => a.stop())
    const b = await host()
    t.after(() => b.stop())
    let inbound: unknown = null
    await b.handle(PROTOCOL, (stream) => {
      inbound = stream
    })
    const out = await a.dialProtocol(b.getMultiaddrs()[0], PROTOCOL)
    t.after(() => out.abort(new Error('test over')))
    // yamux announces a window above its default in a window update on the stream's SYN and ACK
    const window = (s: unknown) => (s as { sendWindowCapacity?: number }).sendWindowCapacity
    await waitFor(
      () => inbound !== null && window(out) === YAMUX_STREAM_WINDOW && window(inbound) === YAMUX_STREAM_WINDOW,
      {
        timeoutMs: scaled(10_000),
        what: `send windows of ${YAMUX_STREAM_WINDOW} bytes (dialer ${window(out)}, listener ${window(inbound)})`,
      },
    )
  })
})
