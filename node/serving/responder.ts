/**
 * The server side of federated serving: answers PROTOCOL_INFER streams (protocols/infer.ts) from
 * enrolled, non-revoked peers by running the request through this node's own OpenAI routes
 * (`execute`, with the forwarded mark: a forwarded request is never forwarded again, so a request
 * crosses at most one hop) and streaming the answer back as it is produced.
 *
 * Refusals are answered in OpenAI's error shape with a head (403 `peer_not_enrolled`, 429
 * `too_many_forwards`, 400 `invalid_forward` for a hostile or broken request frame) and counted
 * `refused`. Bounds: request frame size and nesting, streams per peer and in all, the time to read
 * the request and the whole answer's time. Nothing of the request or answer is logged or kept.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import type { Libp2p } from 'libp2p'
import { PROTOCOL_INFER } from '../../protocols/constants.ts'
import {
  dataFrames,
  decodeInferRequest,
  END_FRAME,
  encodeInferHead,
  INFER_MAX_REQUEST_BYTES,
  InferFrameError,
  type InferHead,
  type InferRequest,
} from '../../protocols/infer.ts'
import type { Logger } from '../logger.ts'
import type { MessageStore } from '../mesh/message-store.ts'
import {
  FORWARD_MAX_INBOUND_STREAMS,
  FORWARD_MAX_STREAMS_PER_PEER,
  FORWARD_READ_TIMEOUT_MS,
  FORWARD_TOTAL_TIMEOUT_MS,
} from './constants.ts'
import type { ForwardMetrics } from './metrics.ts'

/** An answer of the local OpenAI routes, as it comes. */
export interface LocalAnswer {
  status: number
  contentType: string
  retryAfter?: string
  body: AsyncIterable<Uint8Array>
  /** Stops the local request (the requester went away). */
  abort(): void
}

/** Runs a forwarded request through this node's OpenAI routes, marked as forwarded; `signal` stops it. */
export type LocalExecute = (req: InferRequest, signal: AbortSignal) => Promise<LocalAnswer>

/** What the responder uses. */
export interface ResponderComponents {
  libp2p: Libp2p
  store: Pick<MessageStore, 'isEnrolled' | 'revocationOf'>
  /** Undefined until the API is built (requests meanwhile get 503). */
  execute: () => LocalExecute | undefined
  /** The version served here, for the head. */
  version: () => string | undefined
  logger: Logger
  metrics?: ForwardMetrics
}

/** Options of the responder. */
export interface ResponderInit {
  maxPerPeer?: number
  maxInbound?: number
  /** Time to read the request frame, ms. */
  readTimeoutMs?: number
  totalTimeoutMs?: number
}

const encoder = new TextEncoder()

/** Serves PROTOCOL_INFER. */
export class Responder {
  private readonly c: ResponderComponents
  private readonly o: Required<ResponderInit>
  private readonly perPeer = new Map<string, number>()
  /** Streams being served, from all peers. */
  private total = 0
  private started = false

  constructor(components: ResponderComponents, init: ResponderInit = {}) {
    this.c = components
    this.o = {
      maxPerPeer: init.maxPerPeer ?? FORWARD_MAX_STREAMS_PER_PEER,
      maxInbound: init.maxInbound ?? FORWARD_MAX_INBOUND_STREAMS,
      readTimeoutMs: init.readTimeoutMs ?? FORWARD_READ_TIMEOUT_MS,
      totalTimeoutMs: init.totalTimeoutMs ?? FORWARD_TOTAL_TIMEOUT_MS,
    }
  }

  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    await this.c.libp2p.handle(PROTOCOL_INFER, (stream, conn) => this.respond(stream, conn), {
      maxInboundStreams: this.o.maxInbound,
    })
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.c.libp2p.unhandle(PROTOCOL_INFER).catch(() => {})
  }

  private async respond(stream: Stream, conn: Connection): Promise<void> {
    const peer = conn.remotePeer.toString()
    const signal = AbortSignal.timeout(this.o.totalTimeoutMs)
    const lp = lpStream(stream, { maxDataLength: INFER_MAX_REQUEST_BYTES })
    const refuse = async (status: number, code: string, message: string): Promise<void> => {
      this.c.metrics?.count('in', 'refused')
      // a refused peer gets its answer within the read time, or nothing
      const brief = AbortSignal.any([signal, AbortSignal.timeout(this.o.readTimeoutMs)])
      await this.answerError(lp, stream, status, code, message, brief)
    }
    if (!this.c.store.isEnrolled(peer) || this.c.store.revocationOf(peer) !== undefined) {
      return refuse(403, 'peer_not_enrolled', 'only enrolled fleet devices may forward requests here')
    }
    const n = this.perPeer.get(peer) ?? 0
    if (n >= this.o.maxPerPeer) return refuse(429, 'too_many_forwards', 'too many forwarded requests from this peer')
    if (this.total >= this.o.maxInbound) return refuse(429, 'too_many_forwards', 'too many forwarded requests')
    this.perPeer.set(peer, n + 1)
    this.total++
    try {
      let req: InferRequest
      try {
        const read = AbortSignal.any([signal, AbortSignal.timeout(this.o.readTimeoutMs)])
        req = decodeInferRequest((await lp.read({ signal: read })).subarray())
      } catch (err) {
        // a length prefix past INFER_MAX_REQUEST_BYTES: lpStream's InvalidDataLengthError
        const oversized = (err as Error).name === 'InvalidDataLengthError'
        if (!(err instanceof InferFrameError) && !oversized) throw err
        const code = oversized ? 'ERR_INFER_OVERSIZED' : (err as InferFrameError).code
        this.c.logger.debug({ peer, code }, 'refused a forwarded request frame')
        return await refuse(400, 'invalid_forward', oversized ? 'request frame too large' : (err as Error).message)
      }
      await this.serve(lp, stream, req, signal)
    } catch (err) {
      this.c.metrics?.count('in', 'failed')
      this.c.logger.debug({ peer, code: (err as { code?: string }).code }, 'forwarded request failed')
      stream.abort(err as Error)
    } finally {
      this.total--
      const left = (this.perPeer.get(peer) ?? 1) - 1
      if (left <= 0) this.perPeer.delete(peer)
      else this.perPeer.set(peer, left)
    }
  }

  private async serve(
    lp: ReturnType<typeof lpStream>,
    stream: Stream,
    req: InferRequest,
    signal: AbortSignal,
  ): Promise<void> {
    const execute = this.c.execute()
    if (execute === undefined) {
      this.c.metrics?.count('in', 'refused')
      return this.answerError(lp, stream, 503, 'model_unavailable', 'this node is starting', signal)
    }
    // the requester went away (its stream reset) or the time is up: the local request stops
    const gone = new AbortController()
    const onClose = (): void => gone.abort()
    stream.addEventListener('close', onClose, { once: true })
    let answer: LocalAnswer
    try {
      answer = await execute(req, AbortSignal.any([signal, gone.signal]))
    } finally {
      stream.removeEventListener('close', onClose)
    }
    let complete = false
    try {
      const head: InferHead = {
        status: answer.status,
        content_type: answer.contentType.slice(0, 128),
        ...(answer.retryAfter !== undefined && /^\d{1,6}$/.test(answer.retryAfter)
          ? { retry_after: answer.retryAfter }
          : {}),
        ...(answer.status < 400 && this.c.version() !== undefined ? { version: this.c.version() } : {}),
      }
      await lp.write(encodeInferHead(head), { signal })
      for await (const chunk of answer.body) {
        for (const f of dataFrames(chunk)) await lp.write(f, { signal })
      }
      await lp.write(END_FRAME, { signal })
      await stream.close({ signal })
      complete = true
      this.c.metrics?.count('in', answer.status < 400 ? 'ok' : 'upstream_error')
    } finally {
      if (!complete) answer.abort()
    }
  }

  private async answerError(
    lp: ReturnType<typeof lpStream>,
    stream: Stream,
    status: number,
    code: string,
    message: string,
    signal: AbortSignal,
  ): Promise<void> {
    const body = encoder.encode(
      JSON.stringify({
        error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code },
      }),
    )
    try {
      await lp.write(encodeInferHead({ status, content_type: 'application/json; charset=utf-8' }), { signal })
      for (const f of dataFrames(body)) await lp.write(f, { signal })
      await lp.write(END_FRAME, { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }
}
