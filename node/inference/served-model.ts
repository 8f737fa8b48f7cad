/**
 * ServedModel: the model side of the InferenceSupervisor (inference-supervisor.ts, whose header
 * has the states). It knows which model is wanted, which is served and why none is (deactivation),
 * and runs the operations that change them one at a time: switch (header check → drain → load →
 * probe; back to the previous model on failure), unload, deactivate, and the reload of a restart
 * (worker-restarts.ts). The worker lives only while a model is served or being loaded: unload,
 * deactivate and a failure stop it, and the next load spawns one.
 */
import type { EventEmitter } from 'node:events'
import type { Logger } from '../logger.ts'
import type { ResolvedSupervisorInit } from './defaults.ts'
import { type InferenceError, ModelDeactivatedError, type ModelUnavailableError } from './errors.ts'
import type { Inflight } from './inflight.ts'
import { checkHeader, type LoaderHooks, type LoadTarget, loadOn } from './model-loader.ts'
import { runProbe } from './probe.ts'
import type { RequestGate } from './request-gate.ts'
import type * as T from './types.ts'
import type { WorkerProcess } from './worker-process.ts'
import type { WorkerSlot } from './worker-slot.ts'

/** What the served model uses of the supervisor: its parts and its state. */
export interface ServedModelComponents {
  logger: Logger
  now: () => number
  emitter: EventEmitter<T.SupervisorEvents>
  inflight: Inflight
  slot: WorkerSlot
  gate: RequestGate
  loader: LoaderHooks
  /** The supervisor's state now. */
  state(): T.SupervisorState
  setState(state: T.SupervisorState): void
  isRunning(): boolean
  unavailable(message: string): ModelUnavailableError
  /** Cancels a pending restart (deactivate). */
  cancelRestart(): void
}

/** The wanted and served model, and the operations on them. */
export class ServedModel {
  private readonly cfg: ResolvedSupervisorInit
  private readonly h: ServedModelComponents
  private current: T.LoadedModel | undefined
  private wanted: LoadTarget | undefined
  private deactivated: T.DeactivationNote | undefined
  private ops: Promise<unknown> = Promise.resolve()

  constructor(components: ServedModelComponents, init: ResolvedSupervisorInit) {
    this.cfg = init
    this.h = components
  }

  /** The model being served, if any. */
  get model(): T.LoadedModel | undefined {
    return this.current
  }

  /** The model that should be served, if any (kept across a restart). */
  get target(): LoadTarget | undefined {
    return this.wanted
  }

  /** Why no model is served on purpose, if it was deactivated (cleared by the next load). */
  get deactivation(): T.DeactivationNote | undefined {
    return this.deactivated
  }

  /** Serves `path` instead of the current model (see InferenceSupervisor.switchModel). */
  switchTo(path: string, meta: T.ModelMeta): Promise<T.LoadedModel> {
    return this.exclusive(async () => {
      const state = this.h.state()
      if (state === 'stopped' || state === 'stopping') throw this.h.unavailable('supervisor is stopped')
      await checkHeader(this.h.loader, path)
      const previous = this.wanted
      await this.drain()
      if (!this.h.isRunning()) throw this.h.unavailable('the inference service is stopping')
      this.wanted = { path, meta }
      try {
        return await this.loadInto(this.wanted)
      } catch (err) {
        if (previous !== undefined && previous.path !== path && this.h.isRunning()) {
          this.h.logger.warn({ path: previous.path }, 'going back to the previous model')
          this.wanted = previous
          await this.loadInto(previous).catch(() => this.fail())
        } else await this.fail()
        throw err
      }
    })
  }

  /** Unloads the model and stops the worker (the next load spawns one). */
  unload(): Promise<void> {
    return this.exclusive(async () => {
      await this.drain()
      this.wanted = undefined
      this.current = undefined
      await this.releaseWorker(() => this.h.unavailable('the model was unloaded'))
      this.h.gate.queue.refuseAll('closed')
      if (this.h.isRunning()) this.h.setState('idle')
    })
  }

  /** Stops serving on purpose (see InferenceSupervisor.deactivate). */
  deactivate(note: Omit<T.DeactivationNote, 'at'>): Promise<void> {
    return this.exclusive(async () => {
      if (!this.h.isRunning()) return
      this.h.cancelRestart()
      await this.drain()
      this.wanted = undefined
      this.current = undefined
      this.deactivated = { ...note, at: this.h.now() }
      this.h.gate.close()
      await this.releaseWorker(() => this.deactivatedError())
      this.h.logger.warn({ model: note.name, version: note.version, reason: note.reason }, 'model deactivated')
      if (this.h.isRunning()) this.h.setState('idle')
      this.h.emitter.emit('model-deactivated', { at: this.h.now(), note: this.deactivated })
    })
  }

  /** The worker died while serving: nothing is served until the reload, requests wait. */
  enterRestarting(): void {
    this.current = undefined
    this.h.gate.queue.pause()
    this.h.setState('restarting')
  }

  /** Forgets both models (stop()). */
  forget(): void {
    this.current = undefined
    this.wanted = undefined
  }

  /** Settles once the operations queued so far have settled. */
  async settled(): Promise<void> {
    await this.ops.catch(() => {})
  }

  /** The error requests get while the model is deactivated. */
  deactivatedError(): ModelDeactivatedError {
    const d = this.deactivated!
    const what = d.version === undefined ? d.name : `${d.name}@${d.version}`
    return new ModelDeactivatedError(d.name, `model ${d.name} is deactivated on this device (${what}: ${d.reason})`)
  }

  /** Runs model operations one at a time. */
  exclusive<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.ops.then(fn, fn)
    this.ops = run.catch(() => {})
    return run
  }

  /** The post-load probe on `w`. */
  probeOn(w: WorkerProcess, path: string): Promise<T.ProbeResult> {
    return runProbe(this.h.inflight, w, path, this.cfg, {
      now: this.h.now,
      onTimeout: () => this.h.emitter.emit('timeout', { at: this.h.now(), what: 'probe' }),
      onFailure: (e) => this.h.emitter.emit('probe-failure', e),
    })
  }

  /** Gives up on the wanted model: nothing served, state `failed`, and no idle worker kept. */
  async fail(): Promise<void> {
    this.current = undefined
    this.h.gate.close()
    if (this.h.isRunning()) this.h.setState('failed')
    await this.releaseWorker(() => this.h.unavailable('no model is being served (failed)'))
  }

  /** Header check → worker load → probe → ready. Throws ModelLoadError / ProbeFailedError. */
  async loadInto(target: LoadTarget): Promise<T.LoadedModel> {
    if (!this.h.isRunning()) throw this.h.unavailable('the inference service is stopping')
    this.h.setState('loading')
    const info = await checkHeader(this.h.loader, target.path)
    const w = await this.h.slot.ensure()
    const model = await loadOn(w, target, info, this.cfg, this.h.loader)
    this.current = model
    try {
      await this.probeOn(w, target.path)
    } catch (err) {
      this.current = undefined
      if (w.alive) w.send({ type: 'unload', id: 0 })
      throw err
    }
    this.deactivated = undefined
    this.h.setState('ready')
    this.h.gate.queue.resume()
    this.h.logger.info({ path: model.path, loadMs: Math.round(model.loadMs), ctx: model.contextSize }, 'model ready')
    this.h.emitter.emit('model-loaded', { at: this.h.now(), model })
    return model
  }

  /** Detaches the worker (waiting for one being spawned), fails what it still runs, stops it. */
  private async releaseWorker(error: () => InferenceError): Promise<void> {
    const w = await this.h.slot.take()
    if (w === undefined) return
    this.h.inflight.failWorker(w, error)
    await w.stop(this.cfg.stopTimeoutMs)
  }

  /** Waits for in-flight requests (bounded), cancelling them if they take too long. */
  private async drain(): Promise<void> {
    this.h.gate.queue.pause()
    if (this.h.state() === 'ready') this.h.setState('draining')
    await this.h.gate.drain()
  }
}
