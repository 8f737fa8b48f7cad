/**
 * RequestGate: the request path of the supervisor. Admission through the bounded RequestQueue
 * (paused while no model serves: requests wait up to unavailableWaitMs, then fail with
 * ModelUnavailableError; a full queue or a long wait fails with OverloadedError), generation on
 * the worker through Inflight, one `request` event per request (no text) and `queue` events.
 * Also drains in-flight requests before a model operation (bounded, then cancels them).
 */
import type { EventEmitter } from 'node:events'
import type { Logger } from '../logger.ts'
import type { ResolvedSupervisorInit } from './defaults.ts'
import { type InferenceError, type ModelUnavailableError, OverloadedError, RequestAbortedError } from './errors.ts'
import type { Inflight } from './inflight.ts'
import { generateSpec } from './probe.ts'
import { QueueRefusedError, RequestQueue } from './request-queue.ts'
import type * as T from './types.ts'
import type { WorkerProcess } from './worker-process.ts'

/** What the gate reads from the supervisor. */
export interface GateHost {
  readonly state: T.SupervisorState
  readonly worker: WorkerProcess | undefined
  /** Whether requests may queue now (serving, or about to). */
  admitting(): boolean
  /** The error for a request when nothing is served. */
  notServing(): InferenceError
  unavailable(message: string): ModelUnavailableError
  emitter: EventEmitter<T.SupervisorEvents>
  now(): number
  logger: Logger
}

/** What the gate uses: the supervisor's in-flight table and its host's state. */
export interface GateComponents extends GateHost {
  inflight: Inflight
}

/** Admits and runs generation requests. */
export class RequestGate {
  readonly queue: RequestQueue
  private readonly cfg: ResolvedSupervisorInit
  private readonly inflight: Inflight
  private readonly host: GateComponents

  constructor(components: GateComponents, init: ResolvedSupervisorInit) {
    this.cfg = init
    this.inflight = components.inflight
    this.host = components
    this.queue = new RequestQueue({ maxConcurrent: init.maxConcurrent, maxQueue: init.maxQueue })
    this.queue.pause()
  }

  /** Stops admitting and refuses every waiting request. */
  close(): void {
    this.queue.pause()
    this.queue.refuseAll('closed')
  }

  /** Generates text. Throws ModelUnavailableError, OverloadedError, InferenceTimeoutError, … */
  async generate(input: T.GenerateInput, opts: T.GenerateOptions = {}): Promise<T.GenerateResult> {
    const { host } = this
    const t0 = performance.now()
    const record = (r: Partial<T.RequestRecord>): void => {
      const durationMs = performance.now() - t0
      const base = { at: host.now(), mode: input.mode, outcome: 'ok' as const, durationMs, queuedMs: durationMs }
      host.emitter.emit('request', { ...base, tokensIn: 0, tokensOut: 0, ...r })
    }
    let release: () => void
    try {
      if (!host.admitting()) throw host.notServing()
      release = await this.queue.acquire(
        (paused) => (paused ? this.cfg.unavailableWaitMs : this.cfg.queueTimeoutMs),
        opts.signal,
      )
    } catch (err) {
      const e = err instanceof QueueRefusedError ? this.refusalError(err) : (err as InferenceError)
      record({ outcome: 'error', errorCode: e.code })
      throw e
    }
    this.emitQueue()
    const queuedMs = performance.now() - t0
    const w = host.worker
    if (host.state !== 'ready' || w === undefined) {
      release()
      const e = host.unavailable(`no model is being served (${host.state})`)
      record({ outcome: 'error', errorCode: e.code, queuedMs })
      throw e
    }
    const done = (): void => {
      release()
      this.emitQueue()
    }
    try {
      const spec = generateSpec(input, this.cfg.maxTokensLimit)
      const out = await this.inflight.run(w, spec, opts, done, t0, this.cfg.requestTimeoutMs)
      const durationMs = performance.now() - t0
      const { tokensIn, tokensOut, ttftMs } = out
      record({ outcome: 'ok', queuedMs, ttftMs, tokensIn, tokensOut })
      return { ...out, durationMs, queuedMs }
    } catch (err) {
      record({ outcome: 'error', errorCode: (err as InferenceError).code ?? 'ERR_GENERATION', queuedMs })
      throw err
    }
  }

  /** Waits for in-flight requests (bounded), cancelling them, then killing the worker, if they take too long. */
  async drain(): Promise<void> {
    this.queue.pause()
    if (await this.queue.drain(this.cfg.drainTimeoutMs)) return
    this.host.logger.warn({ active: this.queue.active }, 'drain timed out; cancelling in-flight requests')
    this.inflight.cancelAll(() => this.host.unavailable('the model is being replaced'))
    if (await this.queue.drain(this.cfg.cancelGraceMs)) return
    this.host.worker?.kill('timeout')
    await this.queue.drain(this.cfg.cancelGraceMs)
  }

  private emitQueue(): void {
    this.host.emitter.emit('queue', { active: this.queue.active, waiting: this.queue.waiting })
  }

  private refusalError(e: QueueRefusedError): InferenceError {
    if (e.reason === 'aborted') return new RequestAbortedError()
    if (e.reason === 'closed' || (e.reason === 'timeout' && e.paused)) {
      return this.host.unavailable(`no model became available in time (${this.host.state})`)
    }
    return new OverloadedError(
      e.reason === 'full' ? 'too many requests waiting' : 'waited too long for a free slot',
      this.cfg.retryAfterSeconds,
    )
  }
}
