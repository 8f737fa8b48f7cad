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
 */
import { activationFor, type Decision, type RolloutState } from '../../protocols/rollout/index.ts'
import type { ReleaseRef } from '../../protocols/schemas/common.ts'
import type { HealthReport, ReleaseManifest, Verdict } from '../../protocols/schemas/index.ts'
import { signDeviceMessage } from '../../protocols/signing/index.ts'
import type { DaemonContext } from '../daemon.ts'
import type { Installer } from '../install/installer.ts'
import type { StoredMessage } from '../mesh/types.ts'
import { Activator } from './activator.ts'
import {
  CATCH_UP_PEERS,
  CATCH_UP_TIMEOUT_MS,
  DECIDE_INTERVAL_MS,
  EVIDENCE_SYNC_MS,
  STARTUP_CATCH_UP_MS,
  TICK_COALESCE_MS,
  VERDICT_REPUBLISH_MS,
} from './constants.ts'
import { type Deactivation, loadPersisted, type PersistedRollout, savePersisted } from './persisted.ts'
import {
  chooseTarget,
  decideRelease,
  previousRelease,
  type ReleaseRolloutStatus,
  releaseKey,
  releaseStatus,
  snapshot,
} from './plan.ts'
import type { ControllerReporter, ControllerSupervisor } from './types.ts'

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
  private persisted: PersistedRollout = { states: {}, aborted: [], failed: [], deactivated: {} }
  private savedJson = ''
  private entries = new Map<string, Entry>()
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<void> = Promise.resolve()
  private queued = false
  private running = false
  private caughtUp = false
  private startedAt = 0
  private lastEvidenceSync = 0
  private readonly published = new Map<string, number>()
  private readonly prestaging = new Set<string>()
  private readonly activator: Activator | undefined
  private readonly own = { ticks: 0, verdictsPublished: 0 }
  private readonly onMessage = (m: StoredMessage): void => {
    // routine health reports are judged on the timer; ones with health events may abort: at once
    if (m.type === 'HealthReport') {
      const events = (m.message as HealthReport).events
      if (!events.some((e) => Object.values(e.counts).some((n) => n > 0))) return
    }
    this.schedule()
  }
  private readonly onSync = (): void => {
    this.caughtUp = true
  }

  constructor(init: RolloutControllerInit, components: RolloutControllerComponents) {
    this.init = init
    this.c = components
    this.now = components.now ?? Date.now
    this.act = init.act ?? true
    const installer = components.installer
    if (this.act && installer !== undefined) {
      this.activator = new Activator(
        {
          target: (model) => this.target(model),
          bad: (model) => this.bad(model),
          catchUp: (model, target) => this.catchUp(model, target),
          fetch: (model, version) => {
            const e = this.entries.get(`${model}@${version}`)
            if (e !== undefined) this.fetch(e.manifest)
          },
          markFailed: async (model, version) => {
            const key = `${model}@${version}`
            if (!this.persisted.failed.includes(key)) this.persisted.failed.push(key)
            await this.persist()
          },
          whyBad: (model, version) =>
            this.isAborted(`${model}@${version}`) ? 'release aborted' : 'failed on this device',
          deactivation: (model) => this.persisted.deactivated[model],
          setDeactivation: async (model, d) => {
            if (d === null) delete this.persisted.deactivated[model]
            else this.persisted.deactivated[model] = d
            await this.persist()
          },
          enqueue: (fn) => {
            this.chain = this.chain.then(fn).catch((err) => this.c.ctx.logger.error({ err }, 'local rollback failed'))
          },
          logger: components.ctx.logger,
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
    return { ...this.own, ...none, ...this.activator?.counters }
  }

  /** Loads the persisted facts, hooks store and supervisor events, starts the timer. Idempotent. */
  async start(): Promise<void> {
    if (this.running) return
    const { ctx } = this.c
    this.persisted = await loadPersisted(ctx.config.dataDir)
    this.savedJson = JSON.stringify(this.persisted)
    this.running = true
    this.startedAt = this.now()
    ctx.store.on('message', this.onMessage)
    if (ctx.mesh.state === 'running') ctx.mesh.antiEntropy.on('sync', this.onSync)
    this.activator?.start()
    ctx.status.setReleaseState((model, version) => this.entries.get(`${model}@${version}`)?.decision.status.status)
    ctx.status.addSection('rollout', () => this.statusJson())
    if (this.activator !== undefined) ctx.status.setModelNotes(() => this.persisted.deactivated)
    this.timer = setInterval(() => this.schedule(), this.init.decideIntervalMs ?? DECIDE_INTERVAL_MS)
    this.timer.unref()
    this.schedule()
  }

  /** Stops the timer and unhooks; waits for a running tick. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    clearInterval(this.timer)
    const { ctx } = this.c
    ctx.store.off('message', this.onMessage)
    if (ctx.mesh.state === 'running') ctx.mesh.antiEntropy.off('sync', this.onSync)
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
    const releases = [...this.entries.values()]
      .sort((a, b) => a.manifest.model.localeCompare(b.manifest.model) || a.manifest.seq - b.manifest.seq)
      .map((e) => releaseStatus(this.c.ctx.store, e.manifest, e.previous, e.decision))
    const deactivated = { ...this.persisted.deactivated }
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
    return this.persisted.aborted.includes(key)
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
    this.own.ticks++
    this.decideAll()
    await this.persist()
    if (this.activator === undefined) return
    this.prestageAll()
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
      const previous = previousRelease(manifests, m, (k) => this.isAborted(k))
      const d = decideRelease(snap, m, previous, this.persisted.states[key], now)
      this.entries.set(key, { manifest: m, previous, decision: d, sig })
      this.persisted.states[key] = d.state as RolloutState
      if (d.view.aborted && !this.persisted.aborted.includes(key)) {
        this.persisted.aborted.push(key)
        this.c.ctx.logger.warn({ release: key, by: d.view.abortedBy }, 'release aborted by the fleet')
      }
      if (d.pending.length > 0) wantEvidence = true
      if (d.verdictToPublish && (this.init.verdicts ?? true) && enrolled) void this.publishVerdict(key, d)
    }
    if (wantEvidence && now - this.lastEvidenceSync > EVIDENCE_SYNC_MS && this.c.ctx.mesh.state === 'running') {
      this.lastEvidenceSync = now
      void this.syncWithSome(CATCH_UP_PEERS)
    }
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

  private async publishVerdict(key: string, d: Decision): Promise<void> {
    const draft = d.verdictToPublish!
    const id = `${key}/${draft.stage}/${draft.outcome}`
    const now = this.now()
    if (now - (this.published.get(id) ?? 0) < VERDICT_REPUBLISH_MS) return
    this.published.set(id, now)
    const { ctx } = this.c
    const verdict: Verdict = { type: 'Verdict', v: 1, fleet: ctx.config.fleet, device: ctx.identity.peerId, ...draft }
    try {
      await ctx.publish(await signDeviceMessage(verdict, ctx.identity.privateKey))
      this.own.verdictsPublished++
      ctx.logger.info(
        { release: key, stage: draft.stage, outcome: draft.outcome, evidence: draft.evidence.length },
        'verdict published',
      )
    } catch (err) {
      ctx.logger.warn({ err: (err as Error).message, release: key }, 'verdict not published')
    }
  }

  private async persist(): Promise<void> {
    const json = JSON.stringify(this.persisted)
    if (json === this.savedJson) return
    this.savedJson = json
    await savePersisted(this.c.ctx.config.dataDir, this.persisted)
  }

  private bad(model: string): Set<string> {
    const out = new Set<string>()
    for (const k of [...this.persisted.aborted, ...this.persisted.failed]) {
      const at = k.lastIndexOf('@')
      if (k.slice(0, at) === model) out.add(k.slice(at + 1))
    }
    return out
  }

  private prestageAll(): void {
    const installer = this.c.installer
    if (installer === undefined || this.init.prestage === false) return
    const newest = new Map<string, ReleaseManifest>()
    for (const { manifest: m } of this.entries.values()) {
      if (this.bad(m.model).has(m.version)) continue
      const cur = newest.get(m.model)
      if (cur === undefined || m.seq > cur.seq) newest.set(m.model, m)
    }
    for (const m of newest.values()) if (m.policy.prestage !== false) this.fetch(m)
  }

  private fetch(m: ReleaseManifest): void {
    const key = releaseKey(m)
    if (this.prestaging.has(key) || this.c.installer === undefined) return
    this.prestaging.add(key)
    this.c.installer.prestage(m).catch((err: Error & { code?: string }) => {
      this.c.ctx.logger.warn({ release: key, code: err.code }, `prestage failed: ${err.message}`)
      // try again later (a peer with the blocks may show up)
      setTimeout(() => this.prestaging.delete(key), 10_000).unref()
    })
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
    return chooseTarget(candidates, this.bad(model))
  }

  /** One anti-entropy round with a few random connected peers (a full sweep costs O(peers × messages)). */
  private async syncWithSome(n: number): Promise<void> {
    const { mesh } = this.c.ctx
    if (mesh.state !== 'running') return
    const byPeer = new Map(mesh.libp2p.getConnections().map((c) => [c.remotePeer.toString(), c.remotePeer]))
    const peers = [...byPeer.values()].sort(() => Math.random() - 0.5).slice(0, n)
    await Promise.allSettled(peers.map((p) => mesh.antiEntropy.sync(p)))
  }

  /** Catches up with peers before going forward; false when the decision changed meanwhile. */
  private async catchUp(model: string, target: string): Promise<boolean> {
    const { mesh } = this.c.ctx
    const wait = this.init.startupCatchUpMs ?? STARTUP_CATCH_UP_MS
    if (!this.caughtUp && this.now() - this.startedAt < wait) return false // next tick
    if (mesh.state === 'running' && mesh.peers().length > 0) {
      const t = this.init.catchUpTimeoutMs ?? CATCH_UP_TIMEOUT_MS
      await Promise.race([this.syncWithSome(CATCH_UP_PEERS), new Promise((r) => setTimeout(r, t).unref())])
    }
    this.decideAll()
    return this.target(model) === target
  }
}
