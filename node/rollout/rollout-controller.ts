/**
 * RolloutController: runs the collective canary on this node.
 *
 * How it works. On every new verified message (store events, coalesced) and every second, one
 * `tick` runs (ticks never overlap):
 * 1. Decide: for each known release, `decide` over the store's enrollments, revocations, signed
 *    reports, commands and verdicts, joined with the facts kept from earlier ticks (persisted in
 *    `<data>/rollout-state.json`). A `verdictToPublish` is signed with the device key and published
 *    (the store feeds it back, so it is adopted on the next tick). Verdicts still missing evidence
 *    trigger an anti-entropy round. Aborted releases are remembered as bad.
 * 2. Prestage (devices, policy `prestage`): the newest non-bad release per model is fetched.
 * 3. Act (devices only, activator.ts): per model, the target is the highest-seq release whose
 *    `activationFor` this device is `activate` and that is neither aborted nor failed here. Going
 *    forward first catches up with peers (a first anti-entropy round since start, then one more
 *    round) and re-decides, so a device that was offline learns an abort before it would activate.
 *    Load/probe failures, OOMs and restart loops of a new version roll back locally; a fleet abort
 *    makes the target fall back to the previous release within a tick.
 * The seed runs it with `act: false`: it decides, shows status and (once enrolled) publishes
 * verdicts, but activates nothing.
 * Parts: memory.ts (persisted facts), peer-sync.ts (anti-entropy rounds), prestager.ts,
 * verdict-publisher.ts, activator.ts (acting on this device).
 */
import { activationFor, type Decision, type RolloutState } from '../../protocols/rollout/index.ts'
import type { ReleaseRef } from '../../protocols/schemas/common.ts'
import type { HealthReport, ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { DaemonContext } from '../daemon.ts'
import type { Installer } from '../install/installer.ts'
import type { StoredMessage } from '../mesh/types.ts'
import { Activator } from './activator.ts'
import { DECIDE_INTERVAL_MS, TICK_COALESCE_MS } from './constants.ts'
import { RolloutMemory } from './memory.ts'
import { PeerSync } from './peer-sync.ts'
import type { Deactivation } from './persisted.ts'
import {
  chooseTarget,
  decideRelease,
  latestReports,
  previousRelease,
  type ReleaseRolloutStatus,
  releaseKey,
  releaseStatus,
  snapshot,
} from './plan.ts'
import { Prestager } from './prestager.ts'
import type { RolloutEventListener } from './rollout-events.ts'
import type { ControllerReporter, ControllerSupervisor } from './types.ts'
import { VerdictPublisher } from './verdict-publisher.ts'

/** Options. */
export interface RolloutControllerInit {
  /** Activate/roll back on this device (default true; the seed: false). */
  act?: boolean
  /** Publish verdicts when this node is an enrolled device (default true). */
  verdicts?: boolean
  /** Prestage announced releases when their policy says so (default true when acting). */
  prestage?: boolean
  decideIntervalMs?: number
  catchUpTimeoutMs?: number
  startupCatchUpMs?: number
  probationMs?: number
}

/** What the controller uses. */
export interface RolloutControllerComponents {
  ctx: Pick<DaemonContext, 'config' | 'identity' | 'logger' | 'store' | 'mesh' | 'publish' | 'status'>
  installer?: Installer
  supervisor?: ControllerSupervisor
  reporter?: ControllerReporter
  now?: () => number
}

type Entry = { manifest: ReleaseManifest; previous: ReleaseRef | null; decision: Decision; sig: string }

/** The rollout controller service. */
export class RolloutController {
  private readonly init: RolloutControllerInit
  private readonly c: RolloutControllerComponents
  private readonly now: () => number
  private readonly act: boolean
  private readonly memory: RolloutMemory
  private readonly sync: PeerSync
  private readonly prestager: Prestager
  private readonly verdicts: VerdictPublisher
  private entries = new Map<string, Entry>()
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<void> = Promise.resolve()
  private queued = false
  private running = false
  private ticks = 0
  private readonly listeners = new Set<RolloutEventListener>()
  private readonly activator: Activator | undefined
  private readonly onMessage = (m: StoredMessage): void => {
    // routine health reports are judged on the timer; ones with health events may abort: at once
    if (m.type === 'HealthReport') {
      const events = (m.message as HealthReport).events
      if (!events.some((e) => Object.values(e.counts).some((n) => n > 0))) return
    }
    this.schedule()
  }

  constructor(init: RolloutControllerInit, components: RolloutControllerComponents) {
    this.init = init
    this.c = components
    this.now = components.now ?? Date.now
    this.act = init.act ?? true
    const { ctx, installer } = components
    this.memory = new RolloutMemory(ctx.config.dataDir)
    this.sync = new PeerSync(ctx.mesh, init, this.now)
    this.prestager = new Prestager(installer, ctx.logger)
    this.verdicts = new VerdictPublisher(ctx, this.now)
    if (this.act && installer !== undefined) {
      const memory = this.memory
      this.activator = new Activator(
        {
          target: (model) => this.target(model),
          bad: (model) => memory.bad(model),
          catchUp: (model, target) => this.catchUp(model, target),
          fetch: (model, version) => {
            const e = this.entries.get(`${model}@${version}`)
            if (e !== undefined) this.prestager.fetch(e.manifest)
          },
          markFailed: (model, version) => memory.markFailed(`${model}@${version}`),
          whyBad: (model, version) => memory.whyBad(model, version),
          deactivation: (model) => memory.deactivated[model],
          setDeactivation: (model, d) => memory.setDeactivation(model, d),
          enqueue: (fn) => {
            this.chain = this.chain.then(fn).catch((err) => ctx.logger.error({ err }, 'local rollback failed'))
          },
          event: (e) => {
            for (const fn of this.listeners) fn(e)
          },
          logger: ctx.logger,
          now: this.now,
        },
        { installer, supervisor: components.supervisor, reporter: components.reporter },
        { probationMs: init.probationMs },
      )
    }
  }

  /** Counters for /status and tests. */
  get counters(): {
    ticks: number
    verdictsPublished: number
    activations: number
    localRollbacks: number
    fleetRollbacks: number
    deactivations: number
  } {
    const none = { activations: 0, localRollbacks: 0, fleetRollbacks: 0, deactivations: 0 }
    return { ticks: this.ticks, verdictsPublished: this.verdicts.count, ...none, ...this.activator?.counters }
  }

  /**
   * Calls `fn` on every activation, local or fleet rollback and deactivation this device makes
   * (node/rollout/rollout-events.ts). Returns a function that unsubscribes.
   */
  onEvent(fn: RolloutEventListener): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Loads the persisted facts, hooks store and supervisor events, starts the timer. Idempotent. */
  async start(): Promise<void> {
    if (this.running) return
    const { ctx } = this.c
    await this.memory.load()
    this.running = true
    this.sync.start()
    ctx.store.on('message', this.onMessage)
    this.activator?.start()
    ctx.status.setReleaseState((model, version) => this.entries.get(`${model}@${version}`)?.decision.status.status)
    ctx.status.addSection('rollout', () => this.statusJson())
    if (this.activator !== undefined) ctx.status.setModelNotes(() => this.memory.deactivated)
    this.timer = setInterval(() => this.schedule(), this.init.decideIntervalMs ?? DECIDE_INTERVAL_MS)
    this.timer.unref()
    this.schedule()
  }

  /** Stops the timer and unhooks; waits for a running tick. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    clearInterval(this.timer)
    this.c.ctx.store.off('message', this.onMessage)
    this.sync.stop()
    this.activator?.stop()
    await this.chain
  }

  /** Runs one tick now (after any running one). */
  tick(): Promise<void> {
    this.chain = this.chain
      .then(() => this.runTick())
      .catch((err) => {
        this.c.ctx.logger.error({ err }, 'rollout tick failed')
      })
    return this.chain
  }

  /** Every release's rollout status. */
  statusJson(): {
    device: string
    acting: boolean
    counters: RolloutController['counters']
    releases: ReleaseRolloutStatus[]
    /** Models this device deactivated (no active version), with why. */
    deactivated: Record<string, Deactivation>
  } {
    const latest = latestReports(this.c.ctx.store)
    const releases = [...this.entries.values()]
      .sort((a, b) => a.manifest.model.localeCompare(b.manifest.model) || a.manifest.seq - b.manifest.seq)
      .map((e) => releaseStatus(this.c.ctx.store, e.manifest, e.previous, e.decision, latest))
    const deactivated = { ...this.memory.deactivated }
    return { device: this.c.ctx.identity.peerId, acting: this.act, counters: this.counters, releases, deactivated }
  }

  /**
   * The versions this device really runs: activated and, with a supervisor, loaded and probed.
   * Health reports claim these as `active`, so a version that is still loading (or fails to) is
   * never counted as running the release by the gates.
   */
  async activeVersions(): Promise<Array<{ model: string; version: string }>> {
    return (await this.activator?.activeVersions()) ?? []
  }

  /** Whether a release was aborted by the fleet (as known here). */
  isAborted(key: string): boolean {
    return this.memory.isAborted(key)
  }

  private schedule(): void {
    if (!this.running || this.queued) return
    this.queued = true
    // coalesce bursts (every health report is a message) into one tick
    setTimeout(() => {
      this.queued = false
      if (this.running) void this.tick()
    }, TICK_COALESCE_MS).unref()
  }

  private async runTick(): Promise<void> {
    if (!this.running) return
    this.ticks++
    this.decideAll()
    await this.memory.save()
    if (this.activator === undefined) return
    if (this.init.prestage !== false) {
      this.prestager.prestageNewest(
        [...this.entries.values()].map((e) => e.manifest),
        (model) => this.memory.bad(model),
      )
    }
    for (const model of new Set([...this.entries.values()].map((e) => e.manifest.model))) {
      if (!this.running) return
      await this.activator.reconcile(model)
    }
  }

  private decideAll(): void {
    const { store, identity } = this.c.ctx
    const now = this.now()
    const snap = snapshot(store)
    const manifests = store.releases().map((r) => r.message)
    const sorted = [...manifests].sort((a, b) => a.model.localeCompare(b.model) || a.seq - b.seq)
    let wantEvidence = false
    const enrolled = store.isEnrolled(identity.peerId, now)
    for (const m of sorted) {
      const key = releaseKey(m)
      const mine = (x: { model: string; version: string }) => x.model === m.model && x.version === m.version
      const sig = [
        snap.enrollments.length,
        snap.revocations.length,
        snap.commands.filter(mine).length,
        snap.verdicts.filter((v) => mine(v.verdict)).length,
      ].join('/')
      const had = this.entries.get(key)
      if (had !== undefined && had.sig === sig && this.settled(had)) continue
      const previous = previousRelease(manifests, m, (k) => this.memory.isAborted(k))
      const d = decideRelease(snap, m, previous, this.memory.state(key), now)
      this.entries.set(key, { manifest: m, previous, decision: d, sig })
      this.memory.setState(key, d.state as RolloutState)
      if (d.view.aborted && this.memory.markAborted(key)) {
        this.c.ctx.logger.warn({ release: key, by: d.view.abortedBy }, 'release aborted by the fleet')
      }
      if (d.pending.length > 0) wantEvidence = true
      if (d.verdictToPublish && (this.init.verdicts ?? true) && enrolled) void this.verdicts.publish(key, d)
    }
    if (wantEvidence) this.sync.wantEvidence()
  }

  /**
   * A release whose outcome no report can change any more: aborted, or fully promoted and
   * superseded by a newer fully promoted release of the model. Re-decided only when its commands,
   * verdicts or the device set change.
   */
  private settled(e: Entry): boolean {
    const v = e.decision.view
    if (v.aborted) return true
    if (e.decision.status.phase !== 'promoted') return false
    for (const o of this.entries.values()) {
      if (o.manifest.model === e.manifest.model && o.manifest.seq > e.manifest.seq) {
        if (o.decision.status.phase === 'promoted') return true
      }
    }
    return false
  }

  /** The version this device should run for a model now, from the latest decisions. */
  private target(model: string): string | null {
    const me = this.c.ctx.identity.peerId
    const candidates = [...this.entries.values()]
      .filter((e) => e.manifest.model === model)
      .map((e) => ({
        version: e.manifest.version,
        seq: e.manifest.seq,
        activation: activationFor(me, e.decision.view, e.decision.assignment),
      }))
    return chooseTarget(candidates, this.memory.bad(model))
  }

  /** Catches up with peers before going forward; false when the decision changed meanwhile. */
  private async catchUp(model: string, target: string): Promise<boolean> {
    if (!(await this.sync.beforeForward())) return false // next tick
    this.decideAll()
    return this.target(model) === target
  }
}
