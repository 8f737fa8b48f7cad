/**
 * RolloutController: runs the collective canary on this node.
 *
 * How it works. On every new verified message (store events, coalesced over 50 ms; a release
 * manifest at once) and every second, one `tick` runs (ticks never overlap):
 * 1. Decide (decisions.ts): for each known release, on its own, `decide` over the store's
 *    enrollments, revocations, signed reports, commands and verdicts, joined with the facts kept
 *    from earlier ticks (persisted in `<data>/rollout-state.json`). A `verdictToPublish` is signed
 *    with the device key and published (the store feeds it back, so it is adopted on the next
 *    tick). Verdicts still missing evidence trigger an anti-entropy round. Aborted and conflicted
 *    releases (several valid manifests for different files) are remembered as bad.
 * 2. Prestage (devices, policy `prestage`): the newest non-bad release per model is fetched
 *    (started before the tick writes its facts: a fetch decides nothing).
 * 3. Act (devices only, activator.ts): per model, the target is the highest-seq release whose
 *    `activationFor` this device is `activate` and that is neither aborted nor failed here. Going
 *    forward first catches up with peers (a first anti-entropy round since start, then one more
 *    round) and re-decides, so a device that was offline learns an abort before it would activate.
 *    Load/probe failures, OOMs and restart loops of a new version roll back locally; a fleet abort
 *    makes the target fall back to the previous release within a tick.
 * Fault isolation: an exception in one release (deciding it, prestaging it, acting on its model)
 * is a release error: caught, counted (`releaseErrors`, /metrics), logged once per change and
 * shown in `statusJson().errors`; every other release goes on. A failing tick is a `rollout` loop
 * error (ctx.status.loops).
 * Agent releases are decided beside them as `llmesh-agent@<version>` (agent-releases.ts); the
 * agent updater (node/agent-update/) reads them through `agent` (agent-rollout.ts).
 * The seed runs it with `act: false`: it decides, shows status and (once enrolled) publishes
 * verdicts, but activates nothing.
 * Parts: decisions.ts (per-release decisions), memory.ts (persisted facts), peer-sync.ts (anti-entropy rounds), prestager.ts,
 * verdict-publisher.ts, activator.ts (acting on this device).
 */
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import type { HealthReport } from '../../protocols/schemas/index.ts'
import type { StoredMessage } from '../mesh/types.ts'
import type { Faults } from '../telemetry/faults.ts'
import { Activator } from './activator.ts'
import { AgentRolloutView } from './agent-rollout.ts'
import { DECIDE_INTERVAL_MS, TICK_COALESCE_MS } from './constants.ts'
import { Decisions } from './decisions.ts'
import { RolloutMemory } from './memory.ts'
import { PeerSync } from './peer-sync.ts'
import { latestReports, releaseStatus } from './plan.ts'
import { Prestager } from './prestager.ts'
import { type ReleaseErrorCount, ReleaseErrors } from './release-errors.ts'
import type { RolloutEventListener } from './rollout-events.ts'
import type {
  ControllerCounters,
  RolloutControllerComponents,
  RolloutControllerInit,
  RolloutStatusJson,
} from './types.ts'
import { VerdictPublisher } from './verdict-publisher.ts'

export type { RolloutControllerComponents, RolloutControllerInit } from './types.ts'

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
  private readonly decisions: Decisions
  /** The agent updater's view (node/agent-update/): admitted agent version, refusals, catch-up. */
  readonly agent: AgentRolloutView
  /** Releases failing now (by `model@version`), and failures per (release, code) since start. */
  readonly releaseErrors: ReleaseErrors
  private readonly tickErrors: Faults
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
    // a new release is prestaged at once (its fetch is the slow part); bursts of others coalesce
    this.schedule(m.type === 'ReleaseManifest' ? 0 : TICK_COALESCE_MS)
  }

  constructor(components: RolloutControllerComponents, init: RolloutControllerInit) {
    this.init = init
    this.c = components
    this.now = components.now ?? Date.now
    this.act = init.act ?? true
    const { ctx, installer } = components
    this.memory = new RolloutMemory(ctx.config.dataDir)
    this.sync = new PeerSync(ctx.mesh, init, this.now, ctx.status.loops.loop('peer-sync', ctx.logger, this.now))
    this.releaseErrors = new ReleaseErrors({ logger: ctx.logger, now: this.now })
    this.tickErrors = ctx.status.loops.loop('rollout', ctx.logger, this.now)
    this.prestager = new Prestager(installer, ctx.logger, ctx.status.loops.loop('prestage', ctx.logger, this.now))
    this.verdicts = new VerdictPublisher(ctx, this.now)
    this.decisions = new Decisions({
      ctx,
      memory: this.memory,
      verdicts: this.verdicts,
      errors: this.releaseErrors.faults,
      now: this.now,
      decide: components.decide,
    })
    const catchUp = async () => {
      if (!(await this.sync.beforeForward())) return false
      this.decideAll()
      return true
    }
    this.agent = new AgentRolloutView({ decisions: this.decisions, memory: this.memory, catchUp })
    if (this.act && installer !== undefined) {
      this.activator = new Activator(
        {
          memory: this.memory,
          targeting: {
            target: (model) => this.target(model),
            catchUp: (model, target) => this.catchUp(model, target),
            fetch: (model, version) => {
              const e = this.decisions.entries.get(`${model}@${version}`)
              if (e !== undefined) this.prestager.fetch(e.manifest)
            },
            enqueue: (fn) => {
              this.chain = this.chain.then(fn).catch((err) => ctx.logger.error({ err }, 'local rollback failed'))
            },
          },
          installer,
          supervisor: components.supervisor,
          reporter: components.reporter,
          event: (e) => {
            for (const fn of this.listeners) fn(e)
          },
          logger: ctx.logger,
          now: this.now,
        },
        { probationMs: init.probationMs },
      )
    }
  }

  /** Counters for /status and tests. */
  get counters(): ControllerCounters {
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
    ctx.status.setReleaseState((model, version) => this.releaseState(`${model}@${version}`))
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
      .then(
        () => this.tickErrors.ok('tick'),
        (err) => {
          this.tickErrors.fail('tick', err)
        },
      )
    return this.chain
  }

  /** Every release's rollout status. */
  statusJson(): RolloutStatusJson {
    const latest = latestReports(this.c.ctx.store)
    const releases = [...this.decisions.entries.values(), ...this.decisions.agents.values()]
      .sort((a, b) => a.manifest.model.localeCompare(b.manifest.model) || a.manifest.seq - b.manifest.seq)
      .map((e) => releaseStatus(this.c.ctx.store, e.manifest, e.previous, e.decision, latest))
    return {
      device: this.c.ctx.identity.peerId,
      acting: this.act,
      counters: this.counters,
      releases,
      deactivated: { ...this.memory.deactivated },
      errors: this.releaseErrors.list(),
      conflicts: this.decisions.conflicts,
    }
  }

  /** Failures per (model, version, code) since start (`llmesh_rollout_release_errors_total`). */
  releaseErrorCounts(): ReleaseErrorCount[] {
    return this.releaseErrors.counts()
  }

  /** Whether any node message names this release (a manifest, even a conflicted one, or an agent release). */
  knows(model: string, version: string): boolean {
    if (model === AGENT_LINEAGE) return this.c.ctx.store.list('AgentRelease').some((r) => r.message.version === version)
    return this.c.ctx.store.releases().some((r) => r.message.model === model && r.message.version === version)
  }

  /** A release's state for /status and metrics labels: `conflicted`, or its rollout status. */
  private releaseState(key: string): string | undefined {
    if (this.decisions.isConflicted(key)) return 'conflicted'
    return (this.decisions.entries.get(key) ?? this.decisions.agents.get(key))?.decision.status.status
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

  /** Queues one tick `delayMs` from now, unless one is queued already. */
  private schedule(delayMs = TICK_COALESCE_MS): void {
    if (!this.running || this.queued) return
    this.queued = true
    // coalesce bursts (every health report is a message) into one tick
    setTimeout(() => {
      this.queued = false
      if (this.running) void this.tick()
    }, delayMs).unref()
  }

  private async runTick(): Promise<void> {
    if (!this.running) return
    this.ticks++
    this.decideAll()
    const manifests = [...this.decisions.entries.values()].map((e) => e.manifest)
    // fetches start before the facts are written: a fetch changes no decision, and waits for no disk
    if (this.activator !== undefined && this.init.prestage !== false)
      this.prestager.prestageNewest(manifests, (model) => this.memory.bad(model))
    await this.memory.save()
    if (this.activator === undefined) return
    for (const model of new Set(manifests.map((m) => m.model))) {
      if (!this.running) return
      // one model's failure (installer, supervisor) is an error of its release, not of the tick
      const release = async () => this.target(model) ?? (await this.c.installer?.status())?.[model]?.active ?? 'none'
      await this.releaseErrors.act(model, () => this.activator!.reconcile(model), release)
    }
  }

  private decideAll(): void {
    const { wantEvidence } = this.decisions.decideAll(this.init.verdicts ?? true)
    if (wantEvidence) this.sync.wantEvidence()
  }

  /** The version this device should run for a model now, from the latest decisions. */
  private target(model: string): string | null {
    return this.decisions.target(model)
  }

  /** Catches up with peers before going forward; false when the decision changed meanwhile. */
  private async catchUp(model: string, target: string): Promise<boolean> {
    if (!(await this.sync.beforeForward())) return false // next tick
    this.decideAll()
    return this.target(model) === target
  }
}
