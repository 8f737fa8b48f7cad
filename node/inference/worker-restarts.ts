/**
 * WorkerRestarts: what the supervisor does when its worker exits (the decisions are in
 * restart-policy.ts). Every exit is an event (`worker-exit`, and `crash` or `oom`); an unexpected
 * exit while serving is a restart: counted and emitted (`restart`) at once, while the supervisor's
 * `model` still names the version that died, then the wanted model is reloaded on a new worker
 * after the backoff delay, as one of the supervisor's exclusive model operations.
 */
import type { EventEmitter } from 'node:events'
import type { Logger } from '../logger.ts'
import type { LoadTarget } from './model-loader.ts'
import {
  decideRestart,
  initialRestartBook,
  type RestartBook,
  type RestartPolicyConfig,
  shouldRestart,
} from './restart-policy.ts'
import type * as T from './types.ts'
import type { WorkerExit } from './worker-process.ts'

/** What the restart handling reads and drives in the supervisor. */
export interface WorkerRestartsComponents {
  now: () => number
  logger: Logger
  emitter: EventEmitter<T.SupervisorEvents>
  /** The supervisor's state now. */
  state(): T.SupervisorState
  /** The model the supervisor should serve, if any. */
  wanted(): LoadTarget | undefined
  /** The model served (still the one that died when the exit is handled). */
  current(): T.LoadedModel | undefined
  /** Stops serving until the reload: forgets the model, holds the queue, state `restarting`. */
  enterRestarting(): void
  /** Runs a model operation after those in progress (one at a time). */
  exclusive(fn: () => Promise<void>): Promise<void>
  /** Loads and probes the target on a (new) worker; throws if it fails. */
  loadInto(target: LoadTarget): Promise<unknown>
  /** Gives up: no model served, state `failed`, worker stopped. */
  fail(): Promise<void>
}

/** Handles worker exits and the restarts they call for. */
export class WorkerRestarts {
  private readonly cfg: RestartPolicyConfig
  private readonly hooks: WorkerRestartsComponents
  private book: RestartBook
  private timer: NodeJS.Timeout | undefined

  constructor(components: WorkerRestartsComponents, init: RestartPolicyConfig) {
    this.cfg = init
    this.hooks = components
    this.book = initialRestartBook(init)
  }

  /** Restarts decided so far. */
  get count(): number {
    return this.book.count
  }

  /** Cancels a pending restart (stop, deactivate). */
  cancel(): void {
    clearTimeout(this.timer)
  }

  /** Reports a worker exit (its requests already failed) that happened in state `during`. */
  onExit(exit: WorkerExit, during: T.SupervisorState): void {
    const { emitter, logger } = this.hooks
    const at = this.hooks.now()
    emitter.emit('worker-exit', { at, kind: exit.kind, code: exit.code, signal: exit.signal, during })
    if (exit.kind === 'stopped') return
    logger.warn({ kind: exit.kind, code: exit.code, signal: exit.signal, during }, 'inference worker exited')
    if (exit.kind === 'crash') emitter.emit('crash', { at, code: exit.code, signal: exit.signal })
    if (exit.kind === 'oom') emitter.emit('oom', { at, during: during === 'loading' ? 'load' : 'serving' })
    if (shouldRestart(exit.kind, during, this.hooks.wanted() !== undefined)) this.schedule(exit)
  }

  /**
   * Brings the wanted model back on a new worker after an unexpected exit (with backoff). The
   * restart is counted (and `restart` emitted) when it is decided, while `model` still names the
   * version that died: listeners attribute it to that version (health reports, local rollback).
   */
  private schedule(exit: WorkerExit): void {
    const now = this.hooks.now()
    const decision = decideRestart(this.book, now, this.cfg)
    this.book = decision.book
    const died = this.hooks.current()
    const model = died === undefined ? undefined : { name: died.name, version: died.version }
    this.hooks.emitter.emit('restart', { at: now, count: this.book.count, reason: exit.kind, model })
    this.hooks.enterRestarting()
    this.timer = setTimeout(() => void this.hooks.exclusive(() => this.reload()), decision.delayMs)
  }

  private async reload(): Promise<void> {
    const target = this.hooks.wanted()
    if (this.hooks.state() !== 'restarting' || target === undefined) return
    try {
      await this.hooks.loadInto(target)
    } catch (err) {
      this.hooks.logger.error({ err: (err as Error).message }, 'restart failed')
      await this.hooks.fail()
    }
  }
}
