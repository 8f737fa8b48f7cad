/**
 * InferenceSupervisor: owns one inference worker CHILD process and the model it serves, so a
 * llama.cpp abort or OOM never takes the node down.
 *
 * States (see SupervisorState):
 *   stopped → start() → starting → idle (no model; no worker unless `spawnOnStart`)
 *   idle|ready|failed → loadModel/switchModel → [draining →] loading → ready
 *     loading = header check → worker (spawned if none) load → probe; on failure: back to the
 *     previous model if any (switchModel), else failed
 *   ready + worker exits → restarting → (backoff, new worker, reload, probe) → ready | failed
 *   any running state → deactivate() → [draining →] idle, worker stopped, nothing wanted; requests
 *     fail with ModelDeactivatedError (the reason kept) until the next load
 * The worker lives only while a model is served or being loaded: unloadModel(), deactivate() and
 * `failed` stop it (an idle worker holds ~100 MB RSS), and the next load spawns a new one.
 *   any → stop() → stopping → stopped
 * Requests get a slot only in `ready`. During starting/draining/loading/restarting they wait (up
 * to unavailableWaitMs) and then fail with ModelUnavailableError; in idle/failed/stopped they fail
 * at once. A full queue fails with OverloadedError.
 *
 * Exits are told apart (worker-process.ts): crash, OOM, timeout. Only the kernel's OOM killer makes
 * an `oom` (oom-detector.ts: the worker's own memory cgroup, or the kernel log); a SIGKILL from
 * anyone else is a crash, restarted with backoff like any other. Every incident is an event with
 * a timestamp (`crash`, `oom`, `timeout`, `restart`, `load-failure`, `probe-failure`) for the
 * rollback triggers and metrics. Prompt and completion text are never logged.
 * Parts: worker-slot.ts (the worker process), request-gate.ts (admission, generation, drain),
 * served-model.ts (the wanted and served model, and the load/switch/unload/deactivate operations),
 * model-loader.ts (header check, load), probe.ts (post-load probe), worker-restarts.ts (exit
 * events, restart with backoff) with restart-policy.ts (when to restart, after what delay).
 */
import { EventEmitter } from 'node:events'
import type { Logger } from '../logger.ts'
import { SCORE_TIMEOUT_MS } from './constants.ts'
import { type ResolvedSupervisorInit, resolveSupervisorInit } from './defaults.ts'
import { type InferenceError, ModelUnavailableError, WorkerCrashedError } from './errors.ts'
import { Inflight } from './inflight.ts'
import type { ScoreResult, ScoreSpec } from './ipc.ts'
import type { LoaderHooks } from './model-loader.ts'
import { sharedOomDetector } from './oom-detector.ts'
import { scoreOn } from './probe.ts'
import { RequestGate } from './request-gate.ts'
import { ServedModel } from './served-model.ts'
import type * as T from './types.ts'
import { WorkerRestarts } from './worker-restarts.ts'
import { WorkerSlot } from './worker-slot.ts'

const WAITING_STATES: ReadonlySet<T.SupervisorState> = new Set(['starting', 'draining', 'loading', 'restarting'])

/** Supervises the inference worker. Long-lived: idempotent start()/stop(). */
export class InferenceSupervisor extends EventEmitter<T.SupervisorEvents> {
  private readonly cfg: ResolvedSupervisorInit
  private readonly logger: Logger
  private readonly now: () => number
  private readonly inflight: Inflight
  private readonly slot: WorkerSlot
  private readonly gate: RequestGate
  private readonly loader: LoaderHooks
  private readonly restarts: WorkerRestarts
  private readonly served: ServedModel
  private _state: T.SupervisorState = 'stopped'
  private healthTimer: NodeJS.Timeout | undefined

  constructor(components: T.InferenceSupervisorComponents, init: T.InferenceSupervisorInit = {}) {
    super()
    this.cfg = resolveSupervisorInit(init)
    this.logger = components.logger
    this.now = components.now ?? Date.now
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
    const stopping = () => this.unavailable('the inference service is stopping')
    this.slot = new WorkerSlot(
      {
        logger: this.logger,
        inflight: this.inflight,
        isRunning: () => this.isRunning(),
        stopping,
        onExit: (w, exit) => {
          const during = this._state
          this.slot.exited(w)
          this.inflight.failWorker(w, () => new WorkerCrashedError(`inference worker died (${exit.kind})`))
          this.restarts.onExit(exit, during)
        },
        onTimeout: (what) => this.emit('timeout', { at: this.now(), what }),
        oom: components.oom ?? sharedOomDetector(this.logger),
      },
      this.cfg,
    )
    const self = this
    this.gate = new RequestGate(
      {
        inflight: this.inflight,
        get state() {
          return self._state
        },
        get worker() {
          return self.slot.worker
        },
        admitting: () => this._state === 'ready' || WAITING_STATES.has(this._state),
        notServing: () => this.notServing(),
        unavailable: (m) => this.unavailable(m),
        emitter: this,
        now: this.now,
        logger: this.logger,
      },
      this.cfg,
    )
    this.loader = {
      now: this.now,
      logger: this.logger,
      emit: (event, e) => this.emit(event as 'timeout', e as never),
      stopping,
      isRunning: () => this.isRunning(),
    }
    this.served = new ServedModel(
      {
        logger: this.logger,
        now: this.now,
        emitter: this,
        inflight: this.inflight,
        slot: this.slot,
        gate: this.gate,
        loader: this.loader,
        state: () => this._state,
        setState: (state) => this.setState(state),
        isRunning: () => this.isRunning(),
        unavailable: (m) => this.unavailable(m),
        cancelRestart: () => this.restarts.cancel(),
      },
      this.cfg,
    )
    this.restarts = new WorkerRestarts(
      {
        now: this.now,
        logger: this.logger,
        emitter: this,
        state: () => this._state,
        wanted: () => this.served.target,
        current: () => this.served.model,
        enterRestarting: () => this.served.enterRestarting(),
        exclusive: (fn) => this.served.exclusive(fn),
        loadInto: (target) => this.served.loadInto(target),
        fail: () => this.served.fail(),
      },
      this.cfg,
    )
  }

  get state(): T.SupervisorState {
    return this._state
  }

  /** The model being served, if any. */
  get model(): T.LoadedModel | undefined {
    return this.served.model
  }

  /** Requests served at once, waiting beyond those, and llama.cpp threads (undefined: per model), as configured. */
  get limits(): { maxConcurrent: number; maxQueue: number; threads: number | undefined } {
    return { maxConcurrent: this.cfg.maxConcurrent, maxQueue: this.cfg.maxQueue, threads: this.cfg.threads }
  }

  /** Largest max_tokens a request may ask for. */
  get maxTokensLimit(): number {
    return this.cfg.maxTokensLimit
  }

  /** Why no model is served on purpose, if it was deactivated (cleared by the next load). */
  get deactivation(): T.DeactivationNote | undefined {
    return this.served.deactivation
  }

  status(): T.SupervisorStatus {
    return {
      state: this._state,
      model: this.served.model,
      workerPid: this.slot.worker?.pid,
      workerRssBytes: this.slot.rssBytes,
      restarts: this.restarts.count,
      active: this.gate.queue.active,
      waiting: this.gate.queue.waiting,
      deactivated: this.served.deactivation,
      oomDetection: this.slot.worker?.oomMethod,
    }
  }

  /** Spawns the worker (no model yet; with `spawnOnStart: false`, on the first load). Idempotent. */
  async start(): Promise<void> {
    if (this._state !== 'stopped') return
    this.setState('starting')
    this.healthTimer = setInterval(() => void this.slot.healthCheck(), this.cfg.healthIntervalMs)
    this.healthTimer.unref()
    if (this.cfg.spawnOnStart) {
      try {
        await this.slot.ensure()
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
    this.restarts.cancel()
    this.gate.close()
    const w = this.slot.worker
    if (w !== undefined) {
      this.inflight.failWorker(w, () => this.unavailable('the inference service is stopping'))
      await w.stop(this.cfg.stopTimeoutMs)
    }
    await this.served.settled()
    this.slot.forget()
    this.served.forget()
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
    return this.served.switchTo(path, meta)
  }

  /** Unloads the model and stops the worker (the next load spawns one). */
  unloadModel(): Promise<void> {
    return this.served.unload()
  }

  /**
   * Stops serving on purpose (a bad release with nothing to go back to): drains in-flight
   * requests, forgets the wanted model, stops the worker process (its memory and the model file
   * are released) and keeps `note` so requests fail with ModelDeactivatedError. The next
   * load/switch spawns a new worker. No-op once stopping.
   */
  deactivate(note: Omit<T.DeactivationNote, 'at'>): Promise<void> {
    return this.served.deactivate(note)
  }

  /** Generates text. Throws ModelUnavailableError, OverloadedError, InferenceTimeoutError, … */
  generate(input: T.GenerateInput, opts: T.GenerateOptions = {}): Promise<T.GenerateResult> {
    return this.gate.generate(input, opts)
  }

  /**
   * Embeds `inputs` with the served model: one vector each, in order. Same admission, queue,
   * deadline and `request` events as generation. Throws InputTooLongError for an input longer
   * than the context, and what generate() throws.
   */
  async embed(inputs: string[], opts: Pick<T.GenerateOptions, 'signal'> = {}): Promise<T.EmbedResult> {
    const r = await this.gate.generate({ mode: 'embed', inputs, maxTokens: 1 }, opts)
    return { vectors: r.vectors ?? [], tokensIn: r.tokensIn, durationMs: r.durationMs, queuedMs: r.queuedMs }
  }

  /** Short deterministic generation on the loaded model (greedy, fixed seed); throws ProbeFailedError. */
  async probe(): Promise<T.ProbeResult> {
    const w = this.slot.worker
    const path = this.served.model?.path ?? this.served.target?.path ?? ''
    if (w === undefined || this.served.model === undefined) throw this.unavailable('no model loaded')
    return this.served.probeOn(w, path)
  }

  /**
   * Scores a quality probe (node/quality/) on the sequence reserved for probes, at the lowest
   * evaluation priority; only while ready. `signal` preempts it. Its failure is no probe failure.
   */
  score(spec: ScoreSpec, signal?: AbortSignal): Promise<ScoreResult> {
    const w = this.slot.worker
    if (this._state !== 'ready' || w === undefined || this.served.model === undefined) {
      return Promise.reject(this.unavailable('no model is being served'))
    }
    return scoreOn(w, spec, SCORE_TIMEOUT_MS, signal)
  }

  // ───────────────────────── internals ─────────────────────────

  private isRunning(): boolean {
    return this._state !== 'stopping' && this._state !== 'stopped'
  }

  private notServing(): InferenceError {
    if (this.served.deactivation !== undefined && this._state === 'idle') return this.served.deactivatedError()
    return this.unavailable(`no model is being served (${this._state})`)
  }

  private unavailable(message: string): ModelUnavailableError {
    return new ModelUnavailableError(message, this.cfg.retryAfterSeconds)
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
}
