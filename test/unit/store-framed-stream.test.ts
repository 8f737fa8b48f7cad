import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { describe, test } from 'node:test'
import { REPLICATE_WRITE_BATCH } from '../../node/store/constants.ts'
import { FramedStream } from '../../node/store/framed-stream.ts'

/** Two framed streams joined back to back through PassThroughs (each way's bytes observable). */
function pair(maxFrame?: number) {
  const ab = new PassThrough()
  const ba = new PassThrough()
  const a = new FramedStream({ isInitiator: true, input: ba, output: ab, localPeer: 'A', remotePeer: 'B', maxFrame })
  const b = new FramedStream({ isInitiator: false, input: ab, output: ba, localPeer: 'B', remotePeer: 'A', maxFrame })
  return { a, b, ab, ba }
}

function next(s: FramedStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    s.once('data', resolve)
    s.once('error', reject)
  })
}

function errorOf(s: FramedStream): Promise<Error & { code?: string }> {
  return new Promise((resolve) => s.once('error', resolve))
}

describe('framed replication stream', () => {
  test('both sides agree on a per-session handshake hash and pass whole messages', async () => {
    const { a, b } = pair()
    assert.equal(await a.opened, true)
    assert.equal(await b.opened, true)
    assert.ok(a.handshakeHash?.equals(b.handshakeHash as Buffer))
    assert.ok(a.remotePublicKey.equals(b.publicKey))
    const again = pair()
    await again.a.opened
    assert.ok(!again.a.handshakeHash?.equals(a.handshakeHash as Buffer), 'fresh nonces: a new hash per session')
    const big = Buffer.alloc(300 * 1024, 7)
    const got = next(b)
    a.write(big)
    assert.ok((await got).equals(big))
    const small = next(a)
    b.write(Buffer.from('hi'))
    assert.equal((await small).toString(), 'hi')
    a.destroy()
    b.destroy()
    again.a.destroy()
    again.b.destroy()
  })

  test('messages split across and packed into arbitrary chunks', async () => {
    const input = new PassThrough()
    const output = new PassThrough()
    const s = new FramedStream({ isInitiator: false, input, output, localPeer: 'B', remotePeer: 'A' })
    const frame = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.byteLength]), b])
    const bytes = Buffer.concat([frame(Buffer.alloc(32, 1)), frame(Buffer.from('one')), frame(Buffer.from('two!'))])
    const got: string[] = []
    s.on('data', (m: Buffer) => got.push(m.toString()))
    for (let i = 0; i < bytes.byteLength; i++) input.write(bytes.subarray(i, i + 1)) // one byte at a time
    assert.equal(await s.opened, true)
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(got, ['one', 'two!'])
    s.destroy()
  })

  test('an oversized frame or a bad handshake from the peer destroys the stream', async () => {
    const { b, ab, a } = pair(1024)
    await b.opened
    const err = errorOf(b)
    ab.write(Buffer.from([0, 0, 8, 0])) // announces 2048 bytes
    assert.equal((await err).code, 'ERR_REPLICATE_FRAME')
    a.destroy()

    const input = new PassThrough()
    const s = new FramedStream({ isInitiator: true, input, output: new PassThrough(), localPeer: 'A', remotePeer: 'B' })
    const bad = errorOf(s)
    input.write(Buffer.from([0, 0, 0, 3, 1, 2, 3]))
    assert.match((await bad).message, /handshake frame is 3 bytes/)
    assert.equal(await s.opened, false)
  })
  test('messages written in one turn go out as one write; a batch over REPLICATE_WRITE_BATCH at once', async () => {
    const input = new PassThrough()
    const writes: Buffer[] = []
    const output = new PassThrough()
    const write = output.write.bind(output)
    output.write = ((chunk: Buffer, ...rest: never[]) => {
      writes.push(Buffer.from(chunk))
      return write(chunk, ...rest)
    }) as typeof output.write
    const s = new FramedStream({ isInitiator: true, input, output, localPeer: 'A', remotePeer: 'B' })
    await new Promise((r) => setImmediate(r))
    writes.length = 0 // the nonce
    for (let i = 0; i < 20; i++) s.write(Buffer.from(`request ${i}`))
    assert.equal(writes.length, 0, 'held until the end of the turn')
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setImmediate(r))
    assert.equal(writes.length, 1, `20 small messages: ${writes.length} writes`)
    let off = 0
    for (let i = 0; i < 20; i++) {
      const len = writes[0].readUInt32BE(off)
      assert.equal(writes[0].subarray(off + 4, off + 4 + len).toString(), `request ${i}`, 'in order, each framed')
      off += 4 + len
    }
    assert.equal(off, writes[0].byteLength)
    writes.length = 0
    s.write(Buffer.alloc(REPLICATE_WRITE_BATCH, 1))
    assert.ok(writes.length > 0, 'a batch of REPLICATE_WRITE_BATCH bytes is written in the same turn')
    s.destroy()
  })
})
