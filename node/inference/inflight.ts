/**
 * Requests running on the worker: routes 'text'/'done'/'gen-error' messages to their callers,
 * enforces the per-request deadline and watches that cancels are acknowledged.
 *
 * Two moments per request: `settled` (the caller got its result or error) and `finished` (the
 * worker acknowledged; only then is the concurrency slot released, so the slot count always
 * matches the worker's busy sequences). A worker that does not acknowledge a cancel within the
 * grace period is reported as hung.
 */
import { GenerationError, InferenceTimeoutError, InputTooLongError, RequestAbortedError } from './errors.ts'
import type { FinishReason, FromWorker, GenerateSpec } from './ipc.ts'
import type { GenerateOptions } from './types.ts'
import type { WorkerProcess } from './worker-process.ts'

/** What the worker returned for one request. */
export interface RunOutcome {
  text: string
  tokensIn: number
  tokensOut: number
  finishReason: FinishReason
  /** ms from `startedAt` to the first text chunk. */
  ttftMs: number | undefined
  /** Embeddings: one vector per input. */
  vectors?: number[][]
}

interface Pending {
  worker: WorkerProcess
  chunks: string[]
  startedAt: number
  firstAt: number | undefined
  onText: ((t: string) => void) | undefined
  settled: boolean
  resolve: (o: RunOutcome) => void
  reject: (e: Error) => void
  release: () => void
  timer: NodeJS.Timeout | undefined
  graceTimer: NodeJS.Timeout | undefined
  cleanupSignal: () => void
}

/** Hooks the supervisor provides. */
export interface InflightHooks {
  now: () => number
  cancelGraceMs: number
  /** A request hit its deadline. */
  onTimeout: () => void
  /** The worker did not acknowledge a cancel in time. */
  onHung: (worker: WorkerProcess) => void
}

/** The requests currently on the worker. */
export class Inflight {
  private readonly hooks: InflightHooks
  private readonly pending = new Map<number, Pending>()
  private nextId = 0

  constructor(hooks: InflightHooks) {
    this.hooks = hooks
  }

  get size(): number {
    return this.pending.size
  }

  /** Sends one generation to `worker`; `release` is called once the worker is done with it. */
  run(
    worker: WorkerProcess,
    spec: GenerateSpec,
    opts: GenerateOptions,
    release: () => void,
    startedAt: number,
    timeoutMs: number,
  ): Promise<RunOutcome> {
    const id = ++this.nextId
    return new Promise<RunOutcome>((resolve, reject) => {
      const p: Pending = {
        worker,
        chunks: [],
        startedAt,
        firstAt: undefined,
        onText: opts.onText,
        settled: false,
        resolve,
        reject,
        release,
        timer: undefined,
        graceTimer: undefined,
        cleanupSignal: () => {},
      }
      this.pending.set(id, p)
      if (!worker.send({ type: 'generate', id, spec })) {
        this.finish(id)
        reject(new GenerationError('worker not reachable'))
        return
      }
      p.timer = setTimeout(() => {
        this.hooks.onTimeout()
        this.cancel(id, new InferenceTimeoutError(`request took longer than ${timeoutMs} ms`))
      }, timeoutMs)
      const signal = opts.signal
      if (signal !== undefined) {
        const onAbort = (): void => this.cancel(id, new RequestAbortedError())
        if (signal.aborted) onAbort()
        else {
          signal.addEventListener('abort', onAbort, { once: true })
          p.cleanupSignal = () => signal.removeEventListener('abort', onAbort)
        }
      }
    })
  }

  /** Routes a worker message; returns false if it was not about a request. */
  onMessage(worker: WorkerProcess, m: FromWorker): boolean {
    if (m.type !== 'text' && m.type !== 'done' && m.type !== 'gen-error') return false
    const p = this.pending.get(m.id)
    if (p === undefined || p.worker !== worker) return true
    if (m.type === 'text') {
      if (p.settled) return true
      p.firstAt ??= this.hooks.now()
      p.chunks.push(m.text)
      p.onText?.(m.text)
      return true
    }
    this.finish(m.id)
    if (p.settled) return true
    p.settled = true
    if (m.type === 'gen-error')
      p.reject(m.tooLong === true ? new InputTooLongError(m.message) : new GenerationError(m.message))
    else {
      p.resolve({
        text: p.chunks.join(''),
        tokensIn: m.tokensIn,
        tokensOut: m.tokensOut,
        finishReason: m.finishReason,
        ttftMs: p.firstAt === undefined ? undefined : p.firstAt - p.startedAt,
        ...(m.vectors === undefined ? {} : { vectors: m.vectors }),
      })
    }
    return true
  }

  /** Fails the request now and asks the worker to stop it; the slot is freed on acknowledgement. */
  cancel(id: number, err: Error): void {
    const p = this.pending.get(id)
    if (p === undefined) return
    if (!p.settled) {
      p.settled = true
      p.reject(err)
    }
    clearTimeout(p.timer)
    p.cleanupSignal()
    if (p.graceTimer !== undefined) return
    p.worker.send({ type: 'cancel', id })
    p.graceTimer = setTimeout(() => {
      if (this.pending.get(id) === p) this.hooks.onHung(p.worker)
    }, this.hooks.cancelGraceMs)
  }

  /** Cancels everything running (drain took too long). */
  cancelAll(err: () => Error): void {
    for (const id of [...this.pending.keys()]) this.cancel(id, err())
  }

  /** The worker is gone: fail and release everything it was running. */
  failWorker(worker: WorkerProcess, err: () => Error): void {
    for (const [id, p] of [...this.pending]) {
      if (p.worker !== worker) continue
      this.finish(id)
      if (!p.settled) {
        p.settled = true
        p.reject(err())
      }
    }
  }

  private finish(id: number): void {
    const p = this.pending.get(id)
    if (p === undefined) return
    this.pending.delete(id)
    clearTimeout(p.timer)
    clearTimeout(p.graceTimer)
    p.cleanupSignal()
    p.release()
  }
}
