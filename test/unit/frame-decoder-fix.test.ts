/**
 * libp2p's length-prefixed decoder with the per-read RangeError removed (node/mesh/frame-decoder-fix.ts):
 * the same frames out of the same bytes at any split, the same errors, and no exception thrown
 * when a read ends on a frame boundary.
 */
import assert from 'node:assert/strict'
import { randomBytes, randomInt } from 'node:crypto'
import { test } from 'node:test'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { guardLengthDecoder } from '../../node/mesh/frame-decoder-fix.ts'

/** @chainsafe/libp2p-noise's length decoder (src/encoder.ts; not exported by the package). */
function uint16BEDecode(data: Uint8Array | { byteLength: number; getUint16(o: number): number }): number {
  if (data.byteLength < 2) throw RangeError('Could not decode int16BE')
  if (data instanceof Uint8Array) return (data[0] << 8) + data[1]
  return data.getUint16(0)
}

/** A noise-style decoder (2-byte big-endian length), as @chainsafe/libp2p-noise builds it. */
const noiseDecoder = () =>
  new LengthPrefixedDecoder({ lengthDecoder: uint16BEDecode, maxBufferSize: 16 * 1024 * 1024, encodingLength: () => 2 })

/** `frames` each prefixed with its 2-byte length, concatenated. */
function wire(frames: Uint8Array[]): Uint8Array {
  const out = Buffer.alloc(frames.reduce((n, f) => n + 2 + f.length, 0))
  let off = 0
  for (const f of frames) {
    out.writeUInt16BE(f.length, off)
    out.set(f, off + 2)
    off += 2 + f.length
  }
  return out
}

test('frames come out whole and in order at random splits, noise and varint prefixes', () => {
  for (let trial = 0; trial < 30; trial++) {
    const frames = Array.from({ length: randomInt(1, 40) }, () => new Uint8Array(randomBytes(randomInt(1, 3000))))
    const bytes = wire(frames)
    const d = noiseDecoder()
    const got: Buffer[] = []
    for (let off = 0; off < bytes.length; ) {
      const end = Math.min(bytes.length, off + randomInt(1, 5000))
      for (const f of d.decode(bytes.subarray(off, end))) got.push(Buffer.from(f.subarray()))
      off = end
    }
    assert.equal(got.length, frames.length, `trial ${trial}`)
    for (let i = 0; i < frames.length; i++)
      assert.ok(got[i].equals(Buffer.from(frames[i])), `trial ${trial} frame ${i}`)
  }
  // the varint default (it-length-prefixed's framing), one byte at a time
  const v = new LengthPrefixedDecoder()
  const frame = new Uint8Array(randomBytes(300))
  const bytes = Buffer.concat([Buffer.from([0xac, 0x02]), frame]) // varint 300
  const got: Uint8Array[] = []
  for (let i = 0; i < bytes.length; i++) for (const f of v.decode(bytes.subarray(i, i + 1))) got.push(f.subarray())
  assert.equal(got.length, 1)
  assert.ok(Buffer.from(got[0]).equals(Buffer.from(frame)))
})

test('a read ending on a frame boundary throws nothing; a bad length is still refused', () => {
  const d = noiseDecoder()
  const thrown: unknown[] = []
  // what the loop's catch sees: wrap the (already guarded) length decoder to record throws
  const internals = d as unknown as { lengthDecoder: (b: unknown) => number }
  for (const _ of d.decode(wire([new Uint8Array(10)]))) {
    // first read guards the instance
  }
  const guarded = internals.lengthDecoder
  internals.lengthDecoder = (b) => {
    try {
      return guarded(b)
    } catch (err) {
      thrown.push(err)
      throw err
    }
  }
  let n = 0
  for (let i = 0; i < 100; i++) for (const _ of d.decode(wire([new Uint8Array(50), new Uint8Array(7)]))) n++
  assert.equal(n, 200)
  assert.equal(thrown.length, 0, 'no RangeError at the end of each read')
  // one byte of a 2-byte prefix: the original decoder decides (a RangeError, caught: no frame yet)
  assert.deepEqual([...d.decode(new Uint8Array([0]))], [])
  assert.equal(thrown.length, 1)
  assert.equal([...d.decode(new Uint8Array([3, 1, 2, 3]))].length, 1)
  // limits unchanged
  const small = new LengthPrefixedDecoder({ maxDataLength: 10 })
  assert.throws(() => [...small.decode(new Uint8Array([20, ...new Uint8Array(20)]))], /Invalid message length/)
})

test('a decoder whose empty length would be a whole frame is left as upstream made it', () => {
  const lengthDecoder = (b: { byteLength: number }) => {
    if (b.byteLength < 1) throw new RangeError('short')
    return 0
  }
  const d = { lengthDecoder, encodingLength: () => 0 }
  guardLengthDecoder(d)
  assert.equal(d.lengthDecoder, lengthDecoder, 'not wrapped: answering 0 would loop forever')
})
