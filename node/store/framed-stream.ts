/**
 * A framed, unencrypted replication stream for hypercore over a libp2p stream
 * (`PROTOCOL_REPLICATE`, version 2).
 *
 * Why: corestore's `replicate(true|false)` wraps every session in hyperswarm's secret-stream
 * (a Noise handshake, then XChaCha20-Poly1305 on every message). Over libp2p that is a third
 * layer: the connection is already inside the fleet's private network (pnet, XSalsa20) and
 * libp2p Noise (ChaCha20-Poly1305), which authenticate both peers by their libp2p keys. This
 * stream gives hypercore what it needs from secret-stream and nothing more: message framing (a
 * u32 big-endian length before each message) and a per-session `handshakeHash`, to which
 * hypercore binds its replication capabilities (a peer proves it knows a feed's key for this
 * session only). Block verification is hypercore's and unchanged: every block is checked against
 * the feed's signed Merkle tree before it is stored.
 *
 * Handshake: each side's first frame is a fresh 32-byte random nonce; `handshakeHash` is
 * sha256(domain ‖ initiator nonce ‖ responder nonce ‖ initiator peer id ‖ responder peer id), so
 * a capability from one session (or one peer pair) is worthless in another. `opened` resolves
 * true once the remote nonce has arrived, false if the stream ends first.
 *
 * Hostile input: a frame longer than `maxFrame`, or a first frame that is not 32 bytes, destroys
 * the stream (the replicator then drops the session).
 */
import { createHash, randomBytes } from 'node:crypto'
import { Duplex, type Readable, type Writable } from 'node:stream'
import { REPLICATE_FRAME_MAX, REPLICATE_WRITE_BATCH } from './constants.ts'

const NONCE_BYTES = 32
const HEADER_BYTES = 4
const DOMAIN = Buffer.from('llmesh/replicate/2 handshake\0')

/** Options of one framed stream. */
export interface FramedStreamInit {
  /** True on the side that dialled the libp2p stream (hypercore's initiator). */
  isInitiator: boolean
  /** Bytes from the remote peer. */
  input: Readable
  /** Bytes to the remote peer. */
  output: Writable
  /** libp2p peer ids of this node and of the remote (both authenticated by libp2p Noise). */
  localPeer: string
  remotePeer: string
  /** Largest frame accepted or sent, bytes; default `REPLICATE_FRAME_MAX`. */
  maxFrame?: number
}

/** Error of a framed stream a peer broke (oversized frame, bad handshake). */
export class FramedStreamError extends Error {
  readonly code: 'ERR_REPLICATE_FRAME'
  constructor(message: string) {
    super(message)
    this.name = 'FramedStreamError'
    this.code = 'ERR_REPLICATE_FRAME'
  }
}

/**
 * An object-mode Duplex of whole messages that stands in for hypercore's secret-stream: corestore
 * `replicate(stream)` uses it as `noiseStream` (itself), reads `isInitiator`, `handshakeHash`,
 * `opened`, `remotePublicKey`, `rawStream.udx` (absent: hypercore's TCP in-flight rule) and
 * stores its Protomux in `userData`.
 */
export class FramedStream extends Duplex {
  readonly isInitiator: boolean
  readonly noiseStream = this
  readonly rawStream = this
  readonly udx = undefined
  /** sha256 of the remote/local libp2p peer id (hypercore names peers by these). */
  readonly publicKey: Buffer
  readonly remotePublicKey: Buffer
  handshakeHash: Buffer | null = null
  /** Protomux of the session (set by hypercore). */
  userData: unknown = null
  /** hypercore asks for keep-alives; libp2p's connection monitor already pings the connection. */
  keepAlive = 0
  readonly opened: Promise<boolean>
  private resolveOpened: (ok: boolean) => void = () => {}
  private readonly input: Readable
  private readonly output: Writable
  private readonly maxFrame: number
  private readonly localNonce = randomBytes(NONCE_BYTES)
  private readonly localPeer: string
  private readonly remotePeer: string
  private pending: Buffer[] = []
  private pendingBytes = 0
  /** Messages written this turn of the event loop, not yet framed (see `queue`). */
  private queued: Buffer[] = []
  private queuedBytes = 0
  private flushTimer: NodeJS.Immediate | null = null
  private readonly flushLater = () => this.flushQueued(() => {})
  private readonly onData = (chunk: Buffer) => this.receive(chunk)
  private readonly onEnd = () => this.push(null)
  private readonly onError = (err: Error) => this.destroy(err)

  constructor(init: FramedStreamInit) {
    super({ objectMode: true, allowHalfOpen: true })
    this.isInitiator = init.isInitiator
    this.input = init.input
    this.output = init.output
    this.maxFrame = init.maxFrame ?? REPLICATE_FRAME_MAX
    this.localPeer = init.localPeer
    this.remotePeer = init.remotePeer
    this.publicKey = createHash('sha256').update(init.localPeer).digest()
    this.remotePublicKey = createHash('sha256').update(init.remotePeer).digest()
    this.opened = new Promise((resolve) => {
      this.resolveOpened = resolve
    })
    this.once('close', () => this.resolveOpened(false))
    this.input.on('data', this.onData)
    this.input.on('end', this.onEnd)
    this.input.on('error', this.onError)
    this.input.on('close', () => this.destroy())
    this.output.on('error', this.onError)
    this.output.write(frame([this.localNonce]))
  }

  /** hypercore sets a keep-alive interval; nothing to do (see `keepAlive`). */
  setKeepAlive(ms: number): void {
    this.keepAlive = ms
  }

  override _read(): void {
    this.input.resume()
  }

  override _write(msg: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.queue([msg], cb)
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.queue(
      chunks.map((c) => c.chunk),
      cb,
    )
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.flushQueued(() => this.output.end(() => cb()))
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.flushTimer !== null) clearImmediate(this.flushTimer)
    this.flushTimer = null
    this.queued = []
    this.input.off('data', this.onData)
    this.input.off('end', this.onEnd)
    this.resolveOpened(false)
    this.input.destroy()
    this.output.destroy()
    cb(err)
  }

  /**
   * Holds small messages until the end of this turn of the event loop, so that the messages hypercore
   * writes one by one in a turn (a device's block requests, a seed's small replies) go out as one
   * write to the libp2p stream: one yamux frame, one Noise message, one socket write instead of one
   * each. A batch of `REPLICATE_WRITE_BATCH` bytes or more, or any write while the output waits for
   * a drain, is written at once and its callback waits for the drain.
   */
  private queue(msgs: Buffer[], cb: (err?: Error | null) => void): void {
    for (const m of msgs) {
      if (m.byteLength > this.maxFrame) {
        cb(new FramedStreamError(`message of ${m.byteLength} bytes is over the ${this.maxFrame}-byte frame limit`))
        return
      }
    }
    for (const m of msgs) {
      this.queued.push(m)
      this.queuedBytes += m.byteLength + HEADER_BYTES
    }
    // back-pressure as before: while the libp2p stream wants a drain, each write waits for it
    if (this.queuedBytes >= REPLICATE_WRITE_BATCH || this.output.writableNeedDrain) {
      this.flushQueued(cb)
      return
    }
    this.flushTimer ??= setImmediate(this.flushLater)
    cb()
  }

  /** Writes the held messages (if any), then calls `cb` (after drain when the output is full). */
  private flushQueued(cb: (err?: Error | null) => void): void {
    if (this.flushTimer !== null) clearImmediate(this.flushTimer)
    this.flushTimer = null
    const msgs = this.queued
    this.queued = []
    this.queuedBytes = 0
    if (msgs.length === 0 || this.destroyed) cb()
    else this.send(msgs, cb)
  }

  /** Writes messages as frames, gathered into writes of up to `REPLICATE_WRITE_BATCH` bytes. */
  private send(msgs: Buffer[], cb: (err?: Error | null) => void): void {
    let ok = true
    let batch: Buffer[] = []
    let bytes = 0
    for (const m of msgs) {
      batch.push(m)
      bytes += m.byteLength + HEADER_BYTES
      if (bytes >= REPLICATE_WRITE_BATCH) {
        ok = this.output.write(frame(batch)) && ok
        batch = []
        bytes = 0
      }
    }
    if (batch.length > 0) ok = this.output.write(frame(batch)) && ok
    if (ok) cb()
    else this.output.once('drain', () => cb())
  }

  private receive(chunk: Buffer): void {
    this.pending.push(chunk)
    this.pendingBytes += chunk.byteLength
    while (this.pendingBytes >= HEADER_BYTES && !this.destroyed) {
      const head = this.pending[0].byteLength >= HEADER_BYTES ? this.pending[0] : this.takeBytes(HEADER_BYTES, false)
      const len = head.readUInt32BE(0)
      if (len > this.maxFrame) {
        this.destroy(new FramedStreamError(`peer sent a ${len}-byte frame (limit ${this.maxFrame})`))
        return
      }
      if (this.pendingBytes < HEADER_BYTES + len) return
      this.takeBytes(HEADER_BYTES, true)
      const msg = this.takeBytes(len, true)
      if (this.handshakeHash === null) {
        if (!this.handshake(msg)) return
      } else if (len > 0 && !this.push(msg)) {
        this.input.pause()
      }
    }
  }

  /** The remote nonce: computes `handshakeHash` and opens the stream. */
  private handshake(nonce: Buffer): boolean {
    if (nonce.byteLength !== NONCE_BYTES) {
      this.destroy(new FramedStreamError(`peer's handshake frame is ${nonce.byteLength} bytes, not ${NONCE_BYTES}`))
      return false
    }
    const [ni, nr] = this.isInitiator ? [this.localNonce, nonce] : [nonce, this.localNonce]
    const [pi, pr] = this.isInitiator ? [this.localPeer, this.remotePeer] : [this.remotePeer, this.localPeer]
    this.handshakeHash = createHash('sha256').update(DOMAIN).update(ni).update(nr).update(`${pi}\0${pr}`).digest()
    this.resolveOpened(true)
    return true
  }

  /** Removes `n` bytes from the front of the pending chunks (copying only when they span chunks). */
  private takeBytes(n: number, consume: boolean): Buffer {
    const first = this.pending[0]
    if (first.byteLength >= n) {
      if (!consume) return first.subarray(0, n)
      const out = first.subarray(0, n)
      if (first.byteLength === n) this.pending.shift()
      else this.pending[0] = first.subarray(n)
      this.pendingBytes -= n
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let off = 0
    let i = 0
    while (off < n) {
      const c = this.pending[i]
      const k = Math.min(c.byteLength, n - off)
      c.copy(out, off, 0, k)
      off += k
      if (consume) {
        if (k === c.byteLength) this.pending.shift()
        else this.pending[0] = c.subarray(k)
      } else i++
    }
    if (consume) this.pendingBytes -= n
    return out
  }
}

/** Frames `msgs` (u32 big-endian length, then the bytes) into one buffer. */
function frame(msgs: readonly Buffer[]): Buffer {
  let total = 0
  for (const m of msgs) total += HEADER_BYTES + m.byteLength
  const out = Buffer.allocUnsafe(total)
  let off = 0
  for (const m of msgs) {
    out.writeUInt32BE(m.byteLength, off)
    m.copy(out, off + HEADER_BYTES)
    off += HEADER_BYTES + m.byteLength
  }
  return out
}
