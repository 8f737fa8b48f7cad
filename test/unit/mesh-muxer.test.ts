/**
 * The hosts' stream muxer (node/mesh/muxer.ts): yamux opens every stream with a receive window of
 * `YAMUX_STREAM_WINDOW`, so a sender may have that much in flight before a window update (yamux's
 * own growth never triggers under load; see the constant), and a receiver sends a window update
 * once half of its window is used, not after every data frame (node/mesh/yamux-window-fix.ts).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { YAMUX_STREAM_WINDOW } from '../../node/mesh/constants.ts'
import { meshMuxer } from '../../node/mesh/muxer.ts'
import { meshNoise } from '../../node/mesh/noise-crypto.ts'
import { updateNotDue } from '../../node/mesh/yamux-window-fix.ts'
import { scaled, waitFor } from '../helpers/index.ts'

const PROTOCOL = '/llmesh-test/window/1'
/** yamux's own initial stream window (@chainsafe/libp2p-yamux INITIAL_STREAM_WINDOW). */
const YAMUX_DEFAULT_WINDOW = 256 * 1024

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
    assert.ok(YAMUX_STREAM_WINDOW > YAMUX_DEFAULT_WINDOW, "larger than yamux's default")
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
    // each side may send more than yamux's default window before any update: its credit is the
    // larger window, less what multistream-select sent and the peer has not granted back yet
    // (less than half a window: yamux-window-fix.ts)
    const window = (s: unknown) => (s as { sendWindowCapacity?: number }).sendWindowCapacity ?? 0
    const larger = (s: unknown) => window(s) > YAMUX_DEFAULT_WINDOW && window(s) <= YAMUX_STREAM_WINDOW
    await waitFor(() => inbound !== null && larger(out) && larger(inbound), {
      timeoutMs: scaled(10_000),
      what: `send windows above ${YAMUX_DEFAULT_WINDOW} bytes (dialer ${window(out)}, listener ${window(inbound)})`,
    })
  })

  test('window updates: one per half window received, and every byte arrives', {
    timeout: scaled(60_000),
  }, async (t) => {
    const TOTAL = 8 * 1024 * 1024
    const CHUNK = 16 * 1024 // small writes: upstream answers each data frame with an update
    // the sender's streams count the window updates they receive
    const proto = YamuxStream.prototype as unknown as { handleWindowUpdate: (frame: unknown) => void }
    const handle = proto.handleWindowUpdate
    const updates = new Map<unknown, number>()
    proto.handleWindowUpdate = function (this: unknown, frame: unknown) {
      updates.set(this, (updates.get(this) ?? 0) + 1)
      handle.call(this, frame)
    }
    t.after(() => {
      proto.handleWindowUpdate = handle
    })
    const a = await host()
    t.after(() => a.stop())
    const b = await host()
    t.after(() => b.stop())
    let received = 0
    await b.handle(PROTOCOL, (stream) => {
      stream.addEventListener('message', (evt) => {
        received += evt.data.byteLength
      })
    })
    const out = await a.dialProtocol(b.getMultiaddrs()[0], PROTOCOL)
    t.after(() => out.abort(new Error('test over')))
    const chunk = new Uint8Array(CHUNK).fill(7)
    for (let sent = 0; sent < TOTAL; sent += CHUNK) {
      if (!out.send(chunk)) await out.onDrain()
      // let frames go one by one, as a stream written by a slower producer does
      if (sent % (8 * CHUNK) === 0) await new Promise((r) => setImmediate(r))
    }
    await waitFor(() => received === TOTAL, {
      timeoutMs: scaled(30_000),
      what: `all ${TOTAL} bytes at the receiver (${received})`,
    })
    const n = updates.get(out) ?? 0
    // the ACK of the stream's opening, then at most one per half window
    const most = 1 + Math.ceil(TOTAL / (YAMUX_STREAM_WINDOW / 2))
    assert.ok(n >= 2, `the receiver granted more window (${n} updates)`)
    assert.ok(n <= most, `${n} window updates for ${TOTAL} bytes in ${CHUNK}-byte writes: at most ${most}`)
  })

  test('an update is due once half the window is used, and always while opening or paused', () => {
    const W = YAMUX_STREAM_WINDOW
    const at = (state: StreamState, used: number) => ({ state, recvWindow: W, recvWindowCapacity: W - used })
    assert.equal(updateNotDue(at(StreamState.Established, 0)), true)
    assert.equal(updateNotDue(at(StreamState.Established, W / 2 - 1)), true)
    assert.equal(updateNotDue(at(StreamState.Established, W / 2)), false)
    assert.equal(updateNotDue(at(StreamState.Established, W)), false)
    for (const s of [StreamState.Init, StreamState.SYNSent, StreamState.SYNReceived, StreamState.Paused])
      assert.equal(updateNotDue(at(s, 0)), false, StreamState[s])
  })
})
