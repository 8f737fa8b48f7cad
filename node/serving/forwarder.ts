/**
 * The requester side of federated serving: sends an OpenAI request this node cannot serve to a
 * peer that serves its model, over PROTOCOL_INFER (protocols/infer.ts), and hands the peer's
 * answer back as a head and an async iterable of body bytes, so the HTTP route relays it as it
 * comes (Server-Sent Events included).
 *
 * Peers are chosen from the signed health reports this node holds (peer-choice.ts: enrolled, not
 * revoked, connected, fresh report claiming the model, no canary, least loaded first). Failover:
 * a peer that cannot be dialed, answers a broken head, or answers 429/503 (busy, no model after
 * all) is skipped for the next, at most `maxAttempts` peers. Once body bytes are relayed there is
 * no failover (the client already has part of an answer). Bounds: forwards in flight per peer,
 * dial, head, idle and total timeouts, frame and body sizes (protocols/infer.ts).
 * Nothing of the request or the answer is logged or kept: only counts (metrics.ts).
 */
import type { Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { Libp2p } from 'libp2p'
import { PROTOCOL_INFER } from '../../protocols/constants.ts'
import { latestReports } from '../../protocols/fleet/device-view.ts'
import {
  decodeBodyFrame,
  decodeInferHead,
  encodeInferRequest,
  INFER_MAX_CHUNK_BYTES,
  type InferHead,
  type InferRequest,
} from '../../protocols/infer.ts'
import { DEFAULT_REPORT_INTERVAL_MS } from '../constants.ts'
import type { Logger } from '../logger.ts'
import type { MessageStore } from '../mesh/message-store.ts'
import {
  FORWARD_DIAL_TIMEOUT_MS,
  FORWARD_HEAD_TIMEOUT_MS,
  FORWARD_IDLE_TIMEOUT_MS,
  FORWARD_MAX_ATTEMPTS,
  FORWARD_MAX_STREAMS_PER_PEER,
  FORWARD_REPORT_MAX_INTERVALS,
  FORWARD_TOTAL_TIMEOUT_MS,
} from './constants.ts'
import { ForwardError } from './errors.ts'
import type { ForwardMetrics } from './metrics.ts'
import { type Candidate, choosePeers, type RemoteModel, remoteModels } from './peer-choice.ts'

/** What the forwarder uses. */
export interface ForwarderComponents {
  /** The running libp2p node (undefined while the mesh is not running). */
  libp2p: () => Libp2p | undefined
  store: Pick<MessageStore, 'list' | 'isEnrolled' | 'revocationOf'>
  /** This node's peer id. */
  self: string
  /** Whether a version of a model is a canary as this node knows its rollout (peer-choice.ts). */
  isCanary: (model: string, version: string) => boolean
  logger: Logger
  metrics?: ForwardMetrics
  now?: () => number
}

/** Options of the forwarder. */
export interface ForwarderInit {
  /** Reports older than this make no candidate (default FORWARD_REPORT_MAX_INTERVALS report intervals). */
  reportMaxAgeMs?: number
  /** Let canary versions take forwarded requests (default false). */
  allowCanary?: boolean
  maxPerPeer?: number
  maxAttempts?: number
  dialTimeoutMs?: number
  headTimeoutMs?: number
  idleTimeoutMs?: number
  totalTimeoutMs?: number
}

/** A peer's answer: its head, then its body as it comes (iterate once, to the end or not). */
export interface ForwardedResponse {
  peer: string
  head: InferHead
  body: AsyncIterable<Uint8Array>
  /** Drops the answer (when the body is not read to its end). */
  cancel(): void
}

/** Sends requests to peers that serve their model. */
export class Forwarder {
  private readonly c: ForwarderComponents
  private readonly o: Required<ForwarderInit>
  private readonly inflight = new Map<string, number>()
  /** Peers skipped for the next one (also `llmesh_forward_failovers_total`). */
  readonly counters = { failovers: 0 }

  constructor(components: ForwarderComponents, init: ForwarderInit = {}) {
    this.c = components
    this.o = {
      reportMaxAgeMs: init.reportMaxAgeMs ?? FORWARD_REPORT_MAX_INTERVALS * DEFAULT_REPORT_INTERVAL_MS,
      allowCanary: init.allowCanary ?? false,
      maxPerPeer: init.maxPerPeer ?? FORWARD_MAX_STREAMS_PER_PEER,
      maxAttempts: init.maxAttempts ?? FORWARD_MAX_ATTEMPTS,
      dialTimeoutMs: init.dialTimeoutMs ?? FORWARD_DIAL_TIMEOUT_MS,
      headTimeoutMs: init.headTimeoutMs ?? FORWARD_HEAD_TIMEOUT_MS,
      idleTimeoutMs: init.idleTimeoutMs ?? FORWARD_IDLE_TIMEOUT_MS,
      totalTimeoutMs: init.totalTimeoutMs ?? FORWARD_TOTAL_TIMEOUT_MS,
    }
  }

  private view() {
    const node = this.c.libp2p()
    return {
      self: this.c.self,
      reports: latestReports(this.c.store.list('HealthReport').map((m) => m.message)),
      connected: new Set((node?.getConnections() ?? []).map((x) => x.remotePeer.toString())),
      eligible: (p: string) => this.c.store.isEnrolled(p) && this.c.store.revocationOf(p) === undefined,
      now: (this.c.now ?? Date.now)(),
      maxAgeMs: this.o.reportMaxAgeMs,
    }
  }

  /** The peers that can serve `model` now, best first. */
  candidates(model: string): Candidate[] {
    return choosePeers({
      ...this.view(),
      model,
      isCanary: this.c.isCanary,
      allowCanary: this.o.allowCanary,
      inflight: this.inflight,
      maxPerPeer: this.o.maxPerPeer,
    })
  }

  /** Models peers serve that `local` does not hold, at most `max`. */
  remoteModels(local: ReadonlySet<string>, max: number): RemoteModel[] {
    return remoteModels(this.view(), local, max)
  }

  /**
   * Sends `req` to the best peer, failing over to the next. Undefined: no peer serves the model
   * (counted `no_peer`; the caller answers as it would without forwarding). Throws ForwardError
   * when every peer tried failed.
   */
  async open(req: InferRequest, signal: AbortSignal): Promise<ForwardedResponse | undefined> {
    const peers = this.candidates(req.model).slice(0, this.o.maxAttempts)
    if (peers.length === 0) {
      this.c.metrics?.count('out', 'no_peer')
      return undefined
    }
    let last: unknown
    for (const [i, cand] of peers.entries()) {
      try {
        const r = await this.attempt(cand.peer, req, signal)
        const busy = r.head.status === 429 || r.head.status === 503
        if (busy && i < peers.length - 1) {
          r.cancel()
          this.failover()
          continue
        }
        return r
      } catch (err) {
        last = err
        this.c.logger.debug({ peer: cand.peer, code: (err as { code?: string }).code }, 'forward attempt failed')
        if (signal.aborted) break
        if (i < peers.length - 1) this.failover()
      }
    }
    this.c.metrics?.count('out', 'failed')
    if (last instanceof ForwardError) throw last
    throw new ForwardError('ERR_FORWARD_FAILED', `no peer could serve model ${req.model}`, { cause: last })
  }

  private failover(): void {
    this.counters.failovers++
    this.c.metrics?.failover()
  }

  /** One peer: dial, request frame, head frame; the body is read by the caller. */
  private async attempt(peer: string, req: InferRequest, signal: AbortSignal): Promise<ForwardedResponse> {
    const node = this.c.libp2p()
    if (node === undefined) throw new ForwardError('ERR_FORWARD_FAILED', 'the mesh is not running')
    const total = AbortSignal.any([signal, AbortSignal.timeout(this.o.totalTimeoutMs)])
    const within = (ms: number) => AbortSignal.any([total, AbortSignal.timeout(ms)])
    this.inflight.set(peer, (this.inflight.get(peer) ?? 0) + 1)
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      const n = (this.inflight.get(peer) ?? 1) - 1
      if (n <= 0) this.inflight.delete(peer)
      else this.inflight.set(peer, n)
    }
    let stream: Stream | undefined
    try {
      stream = await node.dialProtocol(peerIdFromString(peer), PROTOCOL_INFER, { signal: within(this.o.dialTimeoutMs) })
      const lp = lpStream(stream, { maxDataLength: INFER_MAX_CHUNK_BYTES })
      await lp.write(encodeInferRequest(req), { signal: total })
      await stream.close({ signal: total })
      const head = decodeInferHead((await lp.read({ signal: within(this.o.headTimeoutMs) })).subarray())
      const s = stream
      const cancel = (): void => {
        s.abort(new Error('forwarded answer dropped'))
        release()
      }
      return { peer, head, body: this.body(lp, s, head, within, release), cancel }
    } catch (err) {
      stream?.abort(err as Error)
      release()
      throw timedOut(err, total) ?? err
    }
  }

  private async *body(
    lp: ReturnType<typeof lpStream>,
    stream: Stream,
    head: InferHead,
    within: (ms: number) => AbortSignal,
    release: () => void,
  ): AsyncGenerator<Uint8Array> {
    let received = 0
    let complete = false
    try {
      for (;;) {
        const signal = within(this.o.idleTimeoutMs)
        let frame: ReturnType<typeof decodeBodyFrame>
        try {
          frame = decodeBodyFrame((await lp.read({ signal })).subarray(), received)
        } catch (err) {
          throw (
            timedOut(err, signal) ??
            new ForwardError('ERR_FORWARD_FAILED', 'the peer broke off its answer', { cause: err })
          )
        }
        if (frame.end) break
        received += frame.data.byteLength
        yield frame.data
      }
      complete = true
    } finally {
      release()
      if (complete) this.c.metrics?.count('out', head.status < 400 ? 'ok' : 'upstream_error')
      else {
        this.c.metrics?.count('out', 'failed')
        stream.abort(new Error('forwarded answer not read to its end'))
      }
    }
  }
}

/** A ForwardError for an abort by one of our timeouts (not by the client going away). */
function timedOut(err: unknown, signal: AbortSignal): ForwardError | undefined {
  if (!signal.aborted || (signal.reason as Error | undefined)?.name !== 'TimeoutError') return undefined
  return new ForwardError('ERR_FORWARD_TIMEOUT', 'the peer took too long to answer', { cause: err })
}
