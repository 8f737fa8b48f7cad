/**
 * Adapts a libp2p 3 stream (message events, `send()` with back-pressure via `onDrain()`) to a
 * Node `Duplex`, which is what hypercore's protocol stream pipes to. Counts bytes both ways.
 */
import { Duplex } from 'node:stream'
import type { Stream } from '@libp2p/interface'

/** Byte counters of one adapted stream. */
export interface ByteCounters {
  bytesIn: number
  bytesOut: number
}

/** Wraps `stream` as a Duplex. Every counter in `counters` is incremented as bytes flow. */
export function streamToDuplex(stream: Stream, ...counters: ByteCounters[]): Duplex {
  let ended = false
  const duplex = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (stream.writeStatus !== 'writable') {
        cb(new Error(`libp2p stream not writable (${stream.writeStatus})`))
        return
      }
      for (const c of counters) c.bytesOut += chunk.byteLength
      try {
        if (stream.send(chunk)) cb()
        else stream.onDrain().then(() => cb(), cb)
      } catch (err) {
        cb(err as Error)
      }
    },
    read() {
      stream.resume()
    },
    final(cb) {
      stream.close().then(
        () => cb(),
        () => cb(),
      )
    },
    destroy(err, cb) {
      if (stream.status === 'open') {
        if (err) stream.abort(err)
        else stream.close().catch(() => stream.abort(new Error('closed')))
      }
      cb(err)
    },
  })
  stream.addEventListener('message', (evt) => {
    const data = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
    for (const c of counters) c.bytesIn += data.byteLength
    if (!duplex.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength))) stream.pause()
  })
  const end = () => {
    if (ended) return
    ended = true
    duplex.push(null)
  }
  stream.addEventListener('remoteCloseWrite', end)
  stream.addEventListener('close', (evt) => {
    if (evt.error !== undefined) duplex.destroy(evt.error)
    else {
      end()
      if (!duplex.destroyed) duplex.destroy()
    }
  })
  return duplex
}
