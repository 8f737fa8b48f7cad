/**
 * WorkerSlot: the supervisor's one inference worker process: spawns it on demand (one spawn at a
 * time; late spawns after a stop are stopped again), routes its messages (generation traffic to
 * Inflight, llama.cpp logs to the logger), reports its exits, and health-checks it (RSS; a
 * worker that does not answer is killed as `timeout`). No model logic here.
 */

import type { Logger } from '../logger.ts'
import { WORKER_OOM_SCORE_ADJ } from './constants.ts'
import type { ResolvedSupervisorInit } from './defaults.ts'
import type { Inflight } from './inflight.ts'
import type { OomDetector } from './oom-detector.ts'
import { type WorkerExit, WorkerProcess } from './worker-process.ts'

/** What the slot reports to the supervisor. */
export interface WorkerSlotHooks {
  /** Whether the supervisor still runs (a worker spawned after a stop is stopped at once). */
  isRunning(): boolean
  /** Error to throw when the supervisor is stopping. */
  stopping(): Error
  onExit(w: WorkerProcess, exit: WorkerExit): void
  onTimeout(what: 'start' | 'health'): void
  /** Tells the worker's OOM kills from other SIGKILLs. */
  oom?: OomDetector
}

/** What the slot uses: the supervisor's logger and in-flight table, and its hooks. */
export interface WorkerSlotComponents extends WorkerSlotHooks {
  logger: Logger
  inflight: Inflight
}

/** Holds at most one live worker. */
export class WorkerSlot {
  private readonly cfg: ResolvedSupervisorInit
  private readonly logger: Logger
  private readonly inflight: Inflight
  private readonly hooks: WorkerSlotComponents
  private w: WorkerProcess | undefined
  private starting: Promise<WorkerProcess> | undefined
  private rss: number | undefined

  constructor(components: WorkerSlotComponents, init: ResolvedSupervisorInit) {
    this.cfg = init
    this.logger = components.logger
    this.inflight = components.inflight
    this.hooks = components
  }

  /** The live worker, if any. */
  get worker(): WorkerProcess | undefined {
    return this.w
  }

  /** RSS of the live worker from its latest health check (none without a worker). */
  get rssBytes(): number | undefined {
    return this.w === undefined ? undefined : this.rss
  }

  /** Forgets the current worker (stopped by the caller). */
  forget(): void {
    this.w = undefined
  }

  /** Forgets `w` if it is the current worker (it exited). */
  exited(w: WorkerProcess): void {
    if (this.w === w) this.w = undefined
  }

  /** Detaches and returns the worker (waiting for one being spawned), for the caller to stop. */
  async take(): Promise<WorkerProcess | undefined> {
    const w = this.w ?? (await this.starting?.catch(() => undefined))
    this.w = undefined
    return w
  }

  /** The live worker, spawning one if needed. */
  async ensure(): Promise<WorkerProcess> {
    if (!this.hooks.isRunning()) throw this.hooks.stopping()
    if (this.w?.alive === true) return this.w
    if (this.starting !== undefined) return this.starting
    const w = new WorkerProcess(
      { logger: this.logger, oom: this.hooks.oom },
      {
        startTimeoutMs: this.cfg.startTimeoutMs,
        memoryLimitBytes: this.cfg.workerMemoryLimitBytes,
        oomScoreAdj: WORKER_OOM_SCORE_ADJ,
      },
    )
    w.on('message', (m) => {
      if (this.inflight.onMessage(w, m)) return
      if (m.type === 'log') this.logger.warn({ llama: m.message }, 'llama.cpp')
    })
    w.on('exit', (exit) => this.hooks.onExit(w, exit))
    this.starting = w
      .start()
      .then(({ pid }) => {
        if (!this.hooks.isRunning()) {
          void w.stop(this.cfg.stopTimeoutMs)
          throw this.hooks.stopping()
        }
        this.w = w
        this.rss = undefined
        this.logger.info({ pid }, 'inference worker started')
        return w
      })
      .catch((err) => {
        this.hooks.onTimeout('start')
        throw err
      })
      .finally(() => {
        this.starting = undefined
      })
    return this.starting
  }

  /** Asks the worker for its health; kills it when it does not answer in time. */
  async healthCheck(): Promise<void> {
    const w = this.w
    if (w?.alive !== true) return
    const id = Math.floor(Math.random() * 2 ** 31)
    w.send({ type: 'health', id })
    try {
      const m = await w.waitFor((x) => x.type === 'health' && x.id === id, this.cfg.healthTimeoutMs, 'health check')
      if (m.type === 'health') this.rss = m.health.rssBytes
      w.seenAlive()
    } catch (err) {
      if ((err as { timeout?: boolean }).timeout === true && w.alive) {
        this.logger.warn({ pid: w.pid }, 'inference worker did not answer the health check; killing it')
        this.hooks.onTimeout('health')
        w.kill('timeout')
      }
    }
  }
}
