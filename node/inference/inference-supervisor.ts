/**
 * InferenceSupervisor: owns one inference worker CHILD process and the model it serves, so a
 * llama.cpp abort or OOM never takes the node down.
 *
 * States (see SupervisorState):
 *   stopped → start() → starting → idle (worker up, no model)
 *   idle|ready|failed → loadModel/switchModel → [draining →] loading → ready
 *     loading = header check → worker load → probe; on failure: back to the previous model if
 *     any (switchModel), else failed
 *   ready + worker exits → restarting → (backoff, new worker, reload, probe) → ready | failed
 *   any running state → deactivate() → [draining →] idle, worker stopped, nothing wanted; requests
 *     fail with ModelDeactivatedError (the reason kept) until the next load
 *   any → stop() → stopping → stopped
 * Requests get a slot only in `ready`. During starting/draining/loading/restarting they wait (up
 * to unavailableWaitMs) and then fail with ModelUnavailableError; in idle/failed/stopped they fail
 * at once. A full queue fails with OverloadedError.
 *
 * Exits are told apart (worker-process.ts): crash, OOM, timeout. Every incident is an event with
 * a timestamp (`crash`, `oom`, `timeout`, `restart`, `load-failure`, `probe-failure`) for the
 * rollback triggers and metrics. Prompt and completion text are never logged.
 */
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { checkGgufForLlama, type GgufInfo } from '../model/gguf.ts'
import * as C from './constants.ts'
import { type ResolvedSupervisorInit, resolveSupervisorInit } from './defaults.ts'
import {
  type InferenceError,
  ModelDeactivatedError,
  ModelLoadError,
  ModelUnavailableError,
  OverloadedError,
  ProbeFailedError,
  RequestAbortedError,
  WorkerCrashedError,
} from './errors.ts'
import { Inflight } from './inflight.ts'
import type { GenerateSpec } from './ipc.ts'
import { loadOnWorker, loadSpecFor } from './load-on-worker.ts'
import type { Logger } from './logger.ts'
import { QueueRefusedError, RequestQueue } from './request-queue.ts'
import type * as T from './types.ts'
import { type WorkerExit, WorkerProcess } from './worker-process.ts'

interface Target {
  path: string
  meta: T.ModelMeta
}

const WAITING_STATES: ReadonlySet<T.SupervisorState> = new Set(['starting', 'draining', 'loading', 'restarting'])

/** Supervises the inference worker. Long-lived: idempotent start()/stop(). */
export class InferenceSupervisor extends EventEmitter<T.SupervisorEvents> {
  private readonly cfg: ResolvedSupervisorInit
  private readonly logger: Logger
  private readonly now: () => number
  private readonly queue: RequestQueue
  private readonly inflight: Inflight
  private worker: WorkerProcess | undefined
  private workerStarting: Promise<WorkerProcess> | undefined
  private current: T.LoadedModel | undefined
  private wanted: Target | undefined
  private _state: T.SupervisorState = 'stopped'
  private restarts = 0
  private backoffMs: number
  private lastRestartAt = 0
  private restartTimer: NodeJS.Timeout | undefined
  private healthTimer: NodeJS.Timeout | undefined
  private workerRss: number | undefined
  private deactivated: T.DeactivationNote | undefined
  private ops: Promise<unknown> = Promise.resolve()

  constructor(init: T.InferenceSupervisorInit, components: T.InferenceSupervisorComponents) {
    super()
    this.cfg = resolveSupervisorInit(init)
    this.logger = components.logger
    this.now = components.now ?? Date.now
    this.backoffMs = this.cfg.restartBackoffMs
    this.queue = new RequestQueue({ maxConcurrent: this.cfg.maxConcurrent, maxQueue: this.cfg.maxQueue })
    this.queue.pause()
    this.inflight = new Inflight({
      now: () => performance.now(),
      cancelGraceMs: this.cfg.cancelGraceMs,
      onTimeout: () => this.emit('timeout', { at: this.now(), what: 'request' }),
      onHung: (w) => {
        this.logger.warn({ pid: w.pid }, 'inference worker ignored a cancel; killing it')
        this.emit('timeout', { at: this.now(), what: 'cancel' })
        w.kill('timeout')
      },
    })
  }

  get state(): T.SupervisorState {
    return this._state
  }

  /** The model being served, if any. */
  get model(): T.LoadedModel | undefined {
    return this.current
  }

  /** Largest max_tokens a request may ask for. */
  get maxTokensLimit(): number {
    return this.cfg.maxTokensLimit
  }

  status(): T.SupervisorStatus {
    return {
      state: this._state,
      model: this.current,
      workerPid: this.worker?.pid,
      workerRssBytes: this.workerRss,
      restarts: this.restarts,
      active: this.queue.active,
      waiting: this.queue.waiting,
      deactivated: this.deactivated,
    }
  }

  /** Why no model is served on purpose, if it was deactivated (cleared by the next load). */
  get deactivation(): T.DeactivationNote | undefined {
    return this.deactivated
  }

  /** Spawns the worker (no model yet; with `spawnOnStart: false`, on the first load). Idempotent. */
  async start(): Promise<void> {
    if (this._state !== 'stopped') return
    this.setState('starting')
    this.healthTimer = setInterval(() => void this.healthCheck(), this.cfg.healthIntervalMs)
    this.healthTimer.unref()
    if (this.cfg.spawnOnStart) {
      try {
        await this.ensureWorker()
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'inference worker failed to start')
      }
    }
    if (this.state === 'starting') this.setState('idle') // not stopped meanwhile
  }

  /** Stops the worker; pending requests fail with ModelUnavailableError. Idempotent. */
  async stop(): Promise<void> {
    if (this._state === 'stopped' || this._state === 'stopping') return
    this.setState('stopping')
    clearInterval(this.healthTimer)
    clearTimeout(this.restartTimer)
    this.queue.pause()
    this.queue.refuseAll('closed')
    const w = this.worker
    if (w !== undefined) {
      this.inflight.failWorker(w, () => this.unavailable('the inference service is stopping'))
      await w.stop(this.cfg.stopTimeoutMs)
    }
    await this.ops.catch(() => {})
    this.worker = undefined
    this.current = undefined
    this.wanted = undefined
    this.setState('stopped')
  }

  /** Loads a model (same as switchModel; there may be nothing to drain). */
  loadModel(path: string, meta: T.ModelMeta = {}): Promise<T.LoadedModel> {
    return this.switchModel(path, meta)
  }

  /**
   * Serves `path` instead of the current model: checks its header first (a bad file never
   * disturbs the running model), drains in-flight requests (bounded, then cancels them), loads,
   * probes, swaps. On failure it goes back to the previous model, if any, and rethrows.
   */
  switchModel(path: string, meta: T.ModelMeta = {}): Promise<T.LoadedModel> {
    return this.exclusive(async () => {
      if (this._state === 'stopped' || this._state === 'stopping') throw this.unavailable('supervisor is stopped')
      await this.checkHeader(path)
      const previous = this.wanted
      await this.drain()
      if (!this.isRunning()) throw this.unavailable('the inference service is stopping')
      this.wanted = { path, meta }
      try {
        return await this.loadInto(this.wanted)
      } catch (err) {
        if (previous !== undefined && previous.path !== path && this.isRunning()) {
          this.logger.warn({ path: previous.path }, 'going back to the previous model')
          this.wanted = previous
          await this.loadInto(previous).catch(() => this.fail())
        } else this.fail()
        throw err
      }
    })
  }

  /** Unloads the model; the worker stays up. */
  unloadModel(): Promise<void> {
    return this.exclusive(async () => {
      await this.drain()
      this.wanted = undefined
      this.current = undefined
      const w = this.worker
      if (w?.alive === true) {
        w.send({ type: 'unload', id: 0 })
        await w.waitFor((m) => m.type === 'unloaded', this.cfg.loadTimeoutMs, 'unload').catch(() => {})
      }
      this.queue.refuseAll('closed')
      if (this.isRunning()) this.setState('idle')
    })
  }

  /**
   * Stops serving on purpose (a bad release with nothing to go back to): drains in-flight
   * requests, forgets the wanted model, stops the worker process (its memory and the model file
   * are released) and keeps `note` so requests fail with ModelDeactivatedError. The next
   * load/switch spawns a new worker. No-op once stopping.
   */
  deactivate(note: Omit<T.DeactivationNote, 'at'>): Promise<void> {
    return this.exclusive(async () => {
      if (!this.isRunning()) return
      clearTimeout(this.restartTimer)
      await this.drain()
      this.wanted = undefined
      this.current = undefined
      this.deactivated = { ...note, at: this.now() }
      this.queue.pause()
      this.queue.refuseAll('closed')
      const w = this.worker ?? (await this.workerStarting?.catch(() => undefined))
      this.worker = undefined
      if (w !== undefined) {
        this.inflight.failWorker(w, () => this.deactivatedError())
        await w.stop(this.cfg.stopTimeoutMs)
      }
      this.logger.warn({ model: note.name, version: note.version, reason: note.reason }, 'model deactivated')
      if (this.isRunning()) this.setState('idle')
      this.emit('model-deactivated', { at: this.now(), note: this.deactivated })
    })
  }

  /** Generates text. Throws ModelUnavailableError, OverloadedError, InferenceTimeoutError, … */
  async generate(input: T.GenerateInput, opts: T.GenerateOptions = {}): Promise<T.GenerateResult> {
    const t0 = performance.now()
    const record = (r: Partial<T.RequestRecord>): void => {
      const durationMs = performance.now() - t0
      const base = { at: this.now(), mode: input.mode, outcome: 'ok' as const, durationMs, queuedMs: durationMs }
      this.emit('request', { ...base, tokensIn: 0, tokensOut: 0, ...r })
    }
    let release: () => void
    try {
      if (!this.admitting()) throw this.notServing()
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
    const w = this.worker
    if (this._state !== 'ready' || w === undefined) {
      release()
      const e = this.unavailable(`no model is being served (${this._state})`)
      record({ outcome: 'error', errorCode: e.code, queuedMs })
      throw e
    }
    try {
      const out = await this.inflight.run(
        w,
        this.spec(input),
        opts,
        this.releaseAndReport(release),
        t0,
        this.cfg.requestTimeoutMs,
      )
      const durationMs = performance.now() - t0
      const { tokensIn, tokensOut, ttftMs } = out
      record({ outcome: 'ok', queuedMs, ttftMs, tokensIn, tokensOut })
      return { ...out, durationMs, queuedMs }
    } catch (err) {
      record({ outcome: 'error', errorCode: (err as InferenceError).code ?? 'ERR_GENERATION', queuedMs })
      throw err
    }
  }

  /** Short deterministic generation on the loaded model (greedy, fixed seed); throws ProbeFailedError. */
  async probe(): Promise<T.ProbeResult> {
    const w = this.worker
    const path = this.current?.path ?? this.wanted?.path ?? ''
    if (w === undefined || this.current === undefined) throw this.unavailable('no model loaded')
    return this.runProbe(w, path)
  }

  // ───────────────────────── internals ─────────────────────────

  private async runProbe(w: WorkerProcess, path: string): Promise<T.ProbeResult> {
    const t0 = performance.now()
    const spec: GenerateSpec = {
      mode: 'completion',
      prompt: this.cfg.probePrompt,
      maxTokens: this.cfg.probeMaxTokens,
      temperature: 0,
      seed: C.PROBE_SEED,
      probe: true,
    }
    let timedOut = false
    try {
      const out = await this.inflight
        .run(w, spec, {}, () => {}, t0, this.cfg.probeTimeoutMs)
        .catch((e) => {
          timedOut = (e as InferenceError).code === 'ERR_INFERENCE_TIMEOUT'
          throw e
        })
      const outputSha256 = createHash('sha256').update(out.text).digest('hex')
      return { tokensOut: out.tokensOut, durationMs: performance.now() - t0, outputSha256 }
    } catch (err) {
      if (timedOut) this.emit('timeout', { at: this.now(), what: 'probe' })
      const message = `probe failed: ${(err as Error).message}`
      this.emit('probe-failure', { at: this.now(), path, message })
      throw new ProbeFailedError(message, { cause: err })
    }
  }

  private spec(input: T.GenerateInput): GenerateSpec {
    return {
      mode: input.mode,
      prompt: input.prompt,
      messages: input.messages,
      maxTokens: Math.max(1, Math.min(input.maxTokens, this.cfg.maxTokensLimit)),
      temperature: input.temperature ?? 0,
      topP: input.topP,
      seed: input.seed,
      stop: input.stop,
    }
  }

  private releaseAndReport(release: () => void): () => void {
    return () => {
      release()
      this.emitQueue()
    }
  }

  private emitQueue(): void {
    this.emit('queue', { active: this.queue.active, waiting: this.queue.waiting })
  }

  private admitting(): boolean {
    return this._state === 'ready' || WAITING_STATES.has(this._state)
  }

  private isRunning(): boolean {
    return this._state !== 'stopping' && this._state !== 'stopped'
  }

  private deactivatedError(): ModelDeactivatedError {
    const d = this.deactivated!
    const what = d.version === undefined ? d.name : `${d.name}@${d.version}`
    return new ModelDeactivatedError(d.name, `model ${d.name} is deactivated on this device (${what}: ${d.reason})`)
  }

  private notServing(): InferenceError {
    if (this.deactivated !== undefined && this._state === 'idle') return this.deactivatedError()
    return this.unavailable(`no model is being served (${this._state})`)
  }

  private unavailable(message: string): ModelUnavailableError {
    return new ModelUnavailableError(message, this.cfg.retryAfterSeconds)
  }

  private refusalError(e: QueueRefusedError): InferenceError {
    if (e.reason === 'aborted') return new RequestAbortedError()
    if (e.reason === 'closed' || (e.reason === 'timeout' && e.paused)) {
      return this.unavailable(`no model became available in time (${this._state})`)
    }
    return new OverloadedError(
      e.reason === 'full' ? 'too many requests waiting' : 'waited too long for a free slot',
      this.cfg.retryAfterSeconds,
    )
  }

  private setState(state: T.SupervisorState): void {
    if (state === this._state) return
    // once stopping, only stop() moves on (to stopped): late operations cannot revive anything
    if (this._state === 'stopping' && state !== 'stopped') return
    const previous = this._state
    this._state = state
    this.logger.info({ state, previous }, 'inference state')
    this.emit('state', { at: this.now(), state, previous })
  }

  /** Runs model operations one at a time. */
  private exclusive<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.ops.then(fn, fn)
    this.ops = run.catch(() => {})
    return run
  }

  private fail(): void {
    this.current = undefined
    this.queue.pause()
    this.queue.refuseAll('closed')
    if (this.isRunning()) this.setState('failed')
  }

  private loadFailure(path: string, err: ModelLoadError): ModelLoadError {
    this.logger.warn({ path, reason: err.reason, code: err.detailCode, err: err.message }, 'model load failed')
    this.emit('load-failure', {
      at: this.now(),
      path,
      reason: err.reason,
      code: err.detailCode ?? err.code,
      message: err.message,
    })
    return err
  }

  private async checkHeader(path: string): Promise<GgufInfo> {
    try {
      return await checkGgufForLlama(path)
    } catch (err) {
      const e = err as { code?: string; message: string }
      throw this.loadFailure(path, new ModelLoadError(e.message, 'invalid-file', e.code, { cause: err }))
    }
  }

  /** Waits for in-flight requests (bounded), cancelling them if they take too long. */
  private async drain(): Promise<void> {
    this.queue.pause()
    if (this._state === 'ready') this.setState('draining')
    if (await this.queue.drain(this.cfg.drainTimeoutMs)) return
    this.logger.warn({ active: this.queue.active }, 'drain timed out; cancelling in-flight requests')
    this.inflight.cancelAll(() => this.unavailable('the model is being replaced'))
    if (await this.queue.drain(this.cfg.cancelGraceMs)) return
    this.worker?.kill('timeout')
    await this.queue.drain(this.cfg.cancelGraceMs)
  }

  /** Header check → worker load → probe → ready. Throws ModelLoadError / ProbeFailedError. */
  private async loadInto(target: Target): Promise<T.LoadedModel> {
    if (!this.isRunning()) throw this.unavailable('the inference service is stopping')
    this.setState('loading')
    const info = await this.checkHeader(target.path)
    const w = await this.ensureWorker()
    const sequences = this.cfg.maxConcurrent + 1 // one more, reserved for probes
    const spec = loadSpecFor(target.path, info, {
      threads: this.cfg.threads,
      contextSize: this.cfg.contextSize,
      sequences,
    })
    const r = await loadOnWorker(w, spec, this.cfg.loadTimeoutMs)
    if (!r.ok) {
      if (r.stopped || !this.isRunning()) throw this.unavailable('the inference service is stopping')
      if (r.timedOut) this.emit('timeout', { at: this.now(), what: 'load' })
      // a worker OOM-killed during load already raised 'oom' from its exit
      if (r.error.reason === 'oom' && w.alive) this.emit('oom', { at: this.now(), during: 'load' })
      throw this.loadFailure(target.path, r.error)
    }
    const model: T.LoadedModel = {
      path: target.path,
      name: target.meta.name ?? target.path.replace(/^.*[\\/]/, '').replace(/\.gguf$/i, ''),
      version: target.meta.version,
      architecture: info.architecture,
      quantization: info.quantization,
      contextSize: r.contextSize,
      trainContextSize: r.trainContextSize,
      threads: spec.threads,
      loadMs: r.loadMs,
      loadedAt: this.now(),
    }
    this.current = model
    try {
      await this.runProbe(w, target.path)
    } catch (err) {
      this.current = undefined
      if (w.alive) w.send({ type: 'unload', id: 0 })
      throw err
    }
    this.deactivated = undefined
    this.setState('ready')
    this.queue.resume()
    this.logger.info({ path: model.path, loadMs: Math.round(model.loadMs), ctx: model.contextSize }, 'model ready')
    this.emit('model-loaded', { at: this.now(), model })
    return model
  }

  /** The live worker, spawning one if needed. */
  private async ensureWorker(): Promise<WorkerProcess> {
    if (!this.isRunning()) throw this.unavailable('the inference service is stopping')
    if (this.worker?.alive === true) return this.worker
    if (this.workerStarting !== undefined) return this.workerStarting
    const w = new WorkerProcess({ startTimeoutMs: this.cfg.startTimeoutMs }, { logger: this.logger })
    w.on('message', (m) => {
      if (this.inflight.onMessage(w, m)) return
      if (m.type === 'log') this.logger.warn({ llama: m.message }, 'llama.cpp')
    })
    w.on('exit', (exit) => this.onWorkerExit(w, exit))
    this.workerStarting = w
      .start()
      .then(({ pid }) => {
        if (!this.isRunning()) {
          void w.stop(this.cfg.stopTimeoutMs)
          throw this.unavailable('the inference service is stopping')
        }
        this.worker = w
        this.workerRss = undefined
        this.logger.info({ pid }, 'inference worker started')
        return w
      })
      .catch((err) => {
        this.emit('timeout', { at: this.now(), what: 'start' })
        throw err
      })
      .finally(() => {
        this.workerStarting = undefined
      })
    return this.workerStarting
  }

  private onWorkerExit(w: WorkerProcess, exit: WorkerExit): void {
    const during = this._state
    if (this.worker === w) this.worker = undefined
    this.inflight.failWorker(w, () => new WorkerCrashedError(`inference worker died (${exit.kind})`))
    const at = this.now()
    this.emit('worker-exit', { at, kind: exit.kind, code: exit.code, signal: exit.signal, during })
    if (exit.kind === 'stopped') return
    this.logger.warn({ kind: exit.kind, code: exit.code, signal: exit.signal, during }, 'inference worker exited')
    if (exit.kind === 'crash') this.emit('crash', { at, code: exit.code, signal: exit.signal })
    if (exit.kind === 'oom') this.emit('oom', { at, during: during === 'loading' ? 'load' : 'serving' })
    if (during === 'ready' && this.wanted !== undefined) this.scheduleRestart(exit)
  }

  /**
   * Brings the wanted model back on a new worker after an unexpected exit (with backoff). The
   * restart is counted (and `restart` emitted) when it is decided, while `model` still names the
   * version that died: listeners attribute it to that version (health reports, local rollback).
   */
  private scheduleRestart(exit: WorkerExit): void {
    const now = this.now()
    if (now - this.lastRestartAt > this.cfg.maxRestartBackoffMs * 2) this.backoffMs = this.cfg.restartBackoffMs
    this.restarts++
    this.lastRestartAt = now
    const died = this.current
    const model = died === undefined ? undefined : { name: died.name, version: died.version }
    this.emit('restart', { at: now, count: this.restarts, reason: exit.kind, model })
    this.current = undefined
    this.queue.pause()
    this.setState('restarting')
    const delay = this.backoffMs
    this.backoffMs = Math.min(this.backoffMs * 2, this.cfg.maxRestartBackoffMs)
    this.restartTimer = setTimeout(() => {
      void this.exclusive(async () => {
        const target = this.wanted
        if (this._state !== 'restarting' || target === undefined) return
        try {
          await this.loadInto(target)
        } catch (err) {
          this.logger.error({ err: (err as Error).message }, 'restart failed')
          this.fail()
        }
      })
    }, delay)
  }

  private async healthCheck(): Promise<void> {
    const w = this.worker
    if (w?.alive !== true) return
    const id = Math.floor(Math.random() * 2 ** 31)
    w.send({ type: 'health', id })
    try {
      const m = await w.waitFor((x) => x.type === 'health' && x.id === id, this.cfg.healthTimeoutMs, 'health check')
      if (m.type === 'health') this.workerRss = m.health.rssBytes
    } catch (err) {
      if ((err as { timeout?: boolean }).timeout === true && w.alive) {
        this.logger.warn({ pid: w.pid }, 'inference worker did not answer the health check; killing it')
        this.emit('timeout', { at: this.now(), what: 'health' })
        w.kill('timeout')
      }
    }
  }
}
