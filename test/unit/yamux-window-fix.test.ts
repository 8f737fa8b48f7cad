import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, describe, test } from 'node:test'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { holdWindowUpdate } from '../../node/mesh/yamux-window-fix.ts'
import { scaled } from '../helpers/index.ts'

/** The package's muxer class (not in its exports map: loaded by file URL), to count the frames it sends. */
const { YamuxMuxer } = (await import(new URL('./muxer.js', import.meta.resolve('@chainsafe/libp2p-yamux')).href)) as {
  YamuxMuxer: { prototype: { sendFrame(header: { type: number }, data?: unknown): unknown } }
}
const PROTOCOL = '/llmesh-test/bulk/1.0.0'
/** yamux's WINDOW_UPDATE frame type. */
const WINDOW_UPDATE = 1

function host(): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  })
}

describe('yamux window updates at half a window', () => {
  test('an established stream holds an update back until half the window is to be returned', () => {
    const w = 256 * 1024
    assert.equal(holdWindowUpdate(w, w), true) // nothing used
    assert.equal(holdWindowUpdate(w, w - 64 * 1024), true) // one 64 KiB frame
    assert.equal(holdWindowUpdate(w, w / 2 + 1), true)
    assert.equal(holdWindowUpdate(w, w / 2), false) // half used: sent
    assert.equal(holdWindowUpdate(w, 0), false)
  })

  const hosts: Libp2p[] = []
  after(() => Promise.all(hosts.map((h) => h.stop())))

  test('a bulk transfer arrives whole, with one update per half window instead of one per frame', async () => {
    const [a, b] = await Promise.all([host(), host()])
    hosts.push(a, b)
    const bytes = 16 * 1024 * 1024
    const data = randomBytes(bytes)
    // window updates sent by either side's muxer (only the receiving side has any to send)
    let updates = 0
    const send = YamuxMuxer.prototype.sendFrame
    YamuxMuxer.prototype.sendFrame = function (header, data) {
      if (header.type === WINDOW_UPDATE) updates++
      return send.call(this, header, data)
    }
    after(() => {
      YamuxMuxer.prototype.sendFrame = send
    })
    const received = new Promise<Buffer>((resolve, reject) => {
      void b.handle(PROTOCOL, (stream: Stream) => {
        const parts: Buffer[] = []
        stream.addEventListener('message', (evt) => {
          const d = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
          parts.push(Buffer.from(d))
          if (parts.reduce((n, p) => n + p.byteLength, 0) >= bytes) resolve(Buffer.concat(parts))
        })
        stream.addEventListener('close', (evt) => {
          if (evt.error !== undefined) reject(evt.error)
        })
      })
    })
    const stream = await a.dialProtocol(b.getMultiaddrs()[0], PROTOCOL)
    // 64 KiB at a time, one per turn of the event loop (as a seed answers block requests): one data frame each
    for (let off = 0; off < bytes; off += 64 * 1024) {
      if (!stream.send(data.subarray(off, off + 64 * 1024))) await stream.onDrain()
      await new Promise((resolve) => setImmediate(resolve))
    }
    const got = await Promise.race([
      received,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('transfer timed out')), scaled(30_000))),
    ])
    assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(data).digest('hex'))
    // the package alone sends one update per data frame (≤ 64 KiB): ≈ 256 for 16 MiB
    console.log('UPDATES', updates)
    assert.ok(updates > 0, 'window updates were sent')
    assert.ok(updates <= bytes / (128 * 1024) + 2, `${updates} window updates for ${bytes} bytes`)
    await stream.close()
  })
})
