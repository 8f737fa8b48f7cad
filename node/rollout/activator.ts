/**
 * What a device runs: the acting half of the rollout controller.
 *
 * How it works, per model on every controller tick (`reconcile`): the controller's decisions give
 * the target version (highest-seq release this device should run, neither aborted nor failed
 * here). Going forward waits for the controller's catch-up (anti-entropy first, so an abort that
 * happened while this device was offline is known before it activates). Switching is
 * installer.activate (or installer.rollback when the target is `previous`) → supervisor
 * switchModel (load + probe) → installer.markHealthy. A load or probe failure, or later on a
 * version under probation an OOM or more than 3 restarts in 5 minutes (node/rollout/local-triggers.ts),
 * is a local rollback: the version is marked failed for good, the failure and the rollback are
 * recorded for the next health report (flushed at once), and the best remaining version is
 * reactivated and served. `activeVersions()` (what health reports claim) lists only versions that
 * loaded and passed their probe.
 *
 * Deactivation: when the active version is bad (aborted by the fleet, or failed here) and there is
 * nothing good to go back to (a model's first release: no `previous`, no other staged target),
 * the device runs nothing for that model rather than a bad version: the supervisor stops serving
 * (worker stopped, requests answered ERR_MODEL_DEACTIVATED), then the installer removes the
 * `active` link (never before the worker let go of the file), and the reason is persisted for
 * /status. A later good release activates normally and clears it.
 */
import type { Installer } from '../install/installer.ts'
import type { Logger } from '../logger.ts'
import { LOCAL_PROBATION_MS } from './constants.ts'
import { type LocalEvent, type LocalTrigger, localRollbackTrigger, pruneTriggerEvents } from './local-triggers.ts'
import type { RolloutMemory } from './memory.ts'
import type { RolloutEvent } from './rollout-events.ts'
import type { ControllerReporter, ControllerSupervisor } from './types.ts'

/** The rollout memory the activator reads and writes (node/rollout/memory.ts: persisted facts). */
export type ActivatorMemory = Pick<RolloutMemory, 'bad' | 'markFailed' | 'whyBad' | 'deactivated' | 'setDeactivation'>

/** Where the controller's decisions meet the activator: what to run, and when. */
export interface ActivatorTargeting {
  /** The version this device should run for a model, from the latest decisions. */
  target(model: string): string | null
  /** Catches up with peers and re-decides; false when the target changed meanwhile. */
  catchUp(model: string, target: string): Promise<boolean>
  /** Fetches a release that is not staged yet. */
  fetch(model: string, version: string): void
  /** Runs `fn` after the running tick (serializes local rollbacks with ticks). */
  enqueue(fn: () => Promise<void>): void
}

/** What the activator is built from. */
export interface ActivatorComponents {
  memory: ActivatorMemory
  targeting: ActivatorTargeting
  installer: Installer
  supervisor?: ControllerSupervisor
  reporter?: ControllerReporter
  /** Told of every activation, rollback and deactivation, as the counters go up (metrics). */
  event?(e: RolloutEvent): void
  logger: Logger
  now(): number
}

/** Options. */
export interface ActivatorInit {
  /** Local triggers apply for this long after a version's activation. */
  probationMs?: number
}

/** Switches versions on this device. */
export class Activator {
  private readonly c: ActivatorComponents
  private readonly memory: ActivatorMemory
  private readonly targeting: ActivatorTargeting
  private readonly installer: Installer
  private readonly supervisor: ControllerSupervisor | undefined
  private readonly reporter: ControllerReporter | undefined
  private readonly probationMs: number
  private readonly activatedAt = new Map<string, number>()
  private readonly probation = new Map<string, LocalEvent[]>()
  private readonly loadTried = new Set<string>()
  /** Per model, the version that passed load + probe here and is being served. */
  private readonly serving = new Map<string, string>()
  readonly counters = { activations: 0, localRollbacks: 0, fleetRollbacks: 0, deactivations: 0 }
  private readonly onRestart = (e: { at: number }): void => this.probationEvent('restart', e.at)
  private readonly onOom = (e: { at: number; during: string }): void => {
    if (e.during === 'serving') this.probationEvent('oom', e.at)
  }

  constructor(components: ActivatorComponents, init: ActivatorInit = {}) {
    this.c = components
    this.memory = components.memory
    this.targeting = components.targeting
    this.installer = components.installer
    this.supervisor = components.supervisor
    this.reporter = components.reporter
    this.probationMs = init.probationMs ?? LOCAL_PROBATION_MS
  }

  /** Follows the supervisor's restarts and OOMs. */
  start(): void {
    this.supervisor?.on('restart', this.onRestart)
    this.supervisor?.on('oom', this.onOom)
  }

  stop(): void {
    this.supervisor?.off('restart', this.onRestart)
    this.supervisor?.off('oom', this.onOom)
  }

  /** The versions this device really runs (activated and, with a supervisor, loaded and probed). */
  async activeVersions(): Promise<Array<{ model: string; version: string }>> {
    if (this.supervisor !== undefined) return [...this.serving].map(([model, version]) => ({ model, version }))
    const st = await this.installer.status()
    return Object.entries(st).flatMap(([model, s]) => (s.active === null ? [] : [{ model, version: s.active }]))
  }

  /** Brings one model to its target version. */
  async reconcile(model: string): Promise<void> {
    const st = (await this.installer.status())[model]
    const active = st?.active ?? null
    const target = this.targeting.target(model)
    const bad = this.memory.bad(model)
    if (target !== null && target !== active) {
      if ((await this.installer.installedManifest(model, target)) === null) {
        this.targeting.fetch(model, target) // fetch on activation when not prestaged
        if (active === null || !bad.has(active)) return
      } else {
        const forward = active === null || !bad.has(active)
        if (forward && !(await this.targeting.catchUp(model, target))) return
        await this.switchTo(model, target, active, forward)
        return
      }
    }
    if (active !== null && bad.has(active)) {
      // No good target staged: fall back to `previous`, or run nothing when there is none.
      if (st?.previous && !bad.has(st.previous)) await this.switchTo(model, st.previous, active, false)
      else {
        this.reporter?.record({ model, version: active }, 'rollbacks')
        await this.deactivate(model, active, this.memory.whyBad(model, active))
      }
      return
    }
    const key = `${model}@${active}`
    if (
      active !== null &&
      st?.previous &&
      !bad.has(st.previous) &&
      !this.serving.has(model) &&
      !this.loadTried.has(key)
    ) {
      await this.resumeActivation(model, active, st.previous)
    } else if (active !== null) await this.ensureServing(model, active)
    else await this.restoreDeactivation(model)
  }

  private async switchTo(model: string, version: string, from: string | null, forward: boolean): Promise<void> {
    const log = this.c.logger
    this.serving.delete(model)
    await this.reporter?.cut()
    const st = (await this.installer.status())[model]
    if (st?.previous === version) await this.installer.rollback(model)
    else await this.installer.activate(model, version)
    if (this.memory.deactivated[model] !== undefined) await this.memory.setDeactivation(model, null)
    this.activatedAt.set(`${model}@${version}`, this.c.now())
    this.probation.set(`${model}@${version}`, [])
    if (forward) this.count('activations', { kind: 'activation', model, version })
    else {
      this.count('fleetRollbacks', { kind: 'fleet-rollback', model, version: from ?? version })
      if (from !== null) this.reporter?.record({ model, version: from }, 'rollbacks')
    }
    log.info({ model, version, from, forward }, forward ? 'activating release' : 'reactivating previous version')
    await this.loadNew(model, version, forward)
  }

  /**
   * `previous` outlives an activation only until the new version passed load + probe, so an
   * `active` with a `previous` and nothing served is an activation a crash, kill -9 or power loss
   * interrupted: finish it as one (load + probe, then declared healthy, or a local rollback).
   */
  private async resumeActivation(model: string, version: string, previous: string): Promise<void> {
    const sup = this.supervisor
    if (sup !== undefined && sup.state !== 'idle' && sup.state !== 'failed') return // next tick
    this.loadTried.add(`${model}@${version}`)
    this.activatedAt.set(`${model}@${version}`, this.c.now())
    this.probation.set(`${model}@${version}`, [])
    this.c.logger.info({ model, version, previous }, 'resuming an interrupted activation')
    await this.loadNew(model, version, true)
  }

  /** Loads and probes a just-switched version; serves it, or rolls back locally. */
  private async loadNew(model: string, version: string, forward: boolean): Promise<void> {
    const log = this.c.logger
    if (this.supervisor === undefined) {
      if (forward) await this.installer.markHealthy(model)
      return
    }
    try {
      await this.supervisor.switchModel(this.installer.layout.file(model, version), { name: model, version })
    } catch (err) {
      const trigger: LocalTrigger =
        (err as { code?: string }).code === 'ERR_PROBE_FAILED' ? 'probe-failure' : 'load-failure'
      log.warn({ model, version, trigger, err: (err as Error).message }, 'new version failed: rolling back locally')
      await this.localFailure(model, version, trigger)
      return
    }
    this.serving.set(model, version)
    log.info({ model, version, forward }, 'release serving')
    if (forward) await this.installer.markHealthy(model)
    else await this.reporter?.flush()
  }

  /** Local rollback: mark failed, record, reactivate and serve the best remaining version. */
  private async localFailure(model: string, version: string, trigger: LocalTrigger): Promise<void> {
    await this.memory.markFailed(`${model}@${version}`)
    this.count('localRollbacks', { kind: 'local-rollback', model, version, trigger })
    const ref = { model, version }
    if (trigger === 'load-failure') this.reporter?.record(ref, 'load_failures')
    if (trigger === 'probe-failure') this.reporter?.record(ref, 'probe_failures')
    this.reporter?.record(ref, 'rollbacks')
    const st = (await this.installer.status())[model]
    const back = this.targeting.target(model)
    if (st?.active === version) {
      if (back !== null && st.previous !== back && (await this.installer.installedManifest(model, back)) !== null) {
        await this.installer.activate(model, back)
      } else if (st.previous && !this.memory.bad(model).has(st.previous)) await this.installer.rollback(model)
      else {
        await this.deactivate(model, version, `local rollback: ${trigger}`)
        return
      }
    }
    const now = (await this.installer.status())[model]?.active ?? null
    const sup = this.supervisor
    if (now !== null && sup !== undefined && sup.model?.version !== now) {
      // the supervisor goes back by itself after a failed switch; after a crash loop it still serves the bad one
      try {
        await sup.switchModel(this.installer.layout.file(model, now), { name: model, version: now })
      } catch (err) {
        this.c.logger.error({ model, version: now, err: (err as Error).message }, 'cannot serve the previous version')
      }
    }
    if (now !== null && (sup === undefined || sup.model?.version === now)) this.serving.set(model, now)
    else this.serving.delete(model)
    this.c.logger.warn({ model, version, trigger, active: now }, 'rolled back locally')
    await this.reporter?.flush()
  }

  /**
   * Runs nothing for `model`: stop serving first (the worker lets go of the file), then remove
   * the `active` link, then persist why. A failure leaves `active` in place for the next tick.
   */
  private async deactivate(model: string, version: string, reason: string): Promise<void> {
    this.serving.delete(model)
    await this.reporter?.cut()
    const sup = this.supervisor
    if (sup !== undefined && (sup.model === undefined || sup.model.name === model)) {
      await sup.deactivate({ name: model, version, reason })
    }
    await this.installer.deactivate(model)
    this.activatedAt.delete(`${model}@${version}`)
    this.probation.delete(`${model}@${version}`)
    await this.memory.setDeactivation(model, { version, reason, at: this.c.now() })
    this.count('deactivations', { kind: 'deactivation', model, version, reason })
    this.c.logger.warn({ model, version, reason }, 'model deactivated: no good version to go back to')
    await this.reporter?.flush()
  }

  /** After a restart, tells an idle supervisor why the model is not served. */
  private async restoreDeactivation(model: string): Promise<void> {
    const d = this.memory.deactivated[model]
    const sup = this.supervisor
    if (d === undefined || sup === undefined || sup.deactivation !== undefined || sup.model !== undefined) return
    if (sup.state !== 'idle') return
    await sup.deactivate({ name: model, version: d.version, reason: d.reason })
  }

  /** Loads the active version into the supervisor when nothing is served (e.g. after a restart). */
  private async ensureServing(model: string, version: string): Promise<void> {
    const sup = this.supervisor
    if (sup === undefined || sup.model !== undefined || this.loadTried.has(`${model}@${version}`)) return
    if (sup.state !== 'idle' && sup.state !== 'failed') return
    this.loadTried.add(`${model}@${version}`)
    try {
      await sup.switchModel(this.installer.layout.file(model, version), { name: model, version })
      this.serving.set(model, version)
    } catch (err) {
      this.c.logger.warn({ model, version, err: (err as Error).message }, 'cannot serve the active version')
    }
  }

  /** Counts an action and tells the host (a listener's failure never stops the activator). */
  private count(counter: keyof Activator['counters'], e: RolloutEvent): void {
    this.counters[counter]++
    try {
      this.c.event?.(e)
    } catch (err) {
      this.c.logger.warn({ err, kind: e.kind }, 'rollout event listener failed')
    }
  }

  private probationEvent(kind: LocalEvent['kind'], at: number): void {
    const m = this.supervisor?.model
    if (m?.version === undefined) return
    const key = `${m.name}@${m.version}`
    const since = this.activatedAt.get(key)
    if (since === undefined || at - since > this.probationMs) return
    // pruned: restarts older than the window can no longer matter, so the list stays bounded
    const events = pruneTriggerEvents([...(this.probation.get(key) ?? []), { kind, at }], at)
    this.probation.set(key, events)
    const trigger = localRollbackTrigger(events, at)
    if (trigger === null) return
    this.probation.set(key, [])
    const version = m.version
    this.targeting.enqueue(() => this.localFailure(m.name, version, trigger))
  }
}
