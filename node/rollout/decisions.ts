/**
 * Decisions: the rollout controller's per-release decisions, each release on its own.
 *
 * How it works, on every tick (`decideAll`):
 * 1. The store's manifests are resolved per model@version (protocols/rollout/conflicts.ts): one
 *    manifest per release, duplicates of the same file reduced to the lowest seq, and releases
 *    whose manifests name different files `conflicted`: remembered as bad for good (persisted,
 *    like an abort: never prestaged or activated, devices go back from it), counted as a release
 *    error (`ERR_RELEASE_CONFLICT`) and shown.
 * 2. Every other release is decided (`decide` over the store's facts joined with the persisted
 *    ones) inside its own try/catch: an exception is a release error (caught, counted, logged once
 *    per change, shown), the release keeps its last good decision (frozen, never acted on anew)
 *    and the next release is decided as if nothing happened.
 * 3. Agent releases (agent-releases.ts) are resolved by the same conflict rule and decided the same
 *    way, as `llmesh-agent@<version>`, in their own map (`agents`): `agentTarget` is the agent
 *    version this device's stage admits.
 * A release whose outcome no report can change any more (aborted, or promoted and superseded by a
 * newer promoted release) is re-decided only when its commands, verdicts or the device set change.
 */

import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import {
  activationFor,
  conflictError,
  type Decision,
  type ReleaseConflict,
  type RolloutState,
  resolveReleases,
  stateForManifest,
} from '../../protocols/rollout/index.ts'
import type { ReleaseRef } from '../../protocols/schemas/common.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { DaemonContext } from '../daemon.ts'
import type { Faults } from '../telemetry/faults.ts'
import { resolveAgentReleases } from './agent-releases.ts'
import type { RolloutMemory } from './memory.ts'
import {
  chooseTarget,
  decideRelease,
  previousRelease,
  type RolloutSubject,
  releaseKey,
  type StoreSnapshot,
  snapshot,
} from './plan.ts'
import type { VerdictPublisher } from './verdict-publisher.ts'

/** One release's latest good decision (`M`: a model manifest, or an agent release's subject). */
export interface Entry<M extends RolloutSubject = ReleaseManifest> {
  manifest: M
  digest: string
  previous: ReleaseRef | null
  decision: Decision
  sig: string
}

/** What the decisions use. */
export interface DecisionsComponents {
  ctx: Pick<DaemonContext, 'identity' | 'logger' | 'store'>
  memory: RolloutMemory
  verdicts: VerdictPublisher
  /** Release errors, by `model@version`. */
  errors: Faults
  now: () => number
  /** Runs `decide` for one release (default plan.ts's `decideRelease`). */
  decide?: typeof decideRelease
}

/** Every release's decision, kept between ticks. */
export class Decisions {
  readonly entries = new Map<string, Entry>()
  /** Agent releases' decisions, by `llmesh-agent@<version>`. */
  readonly agents = new Map<string, Entry<RolloutSubject>>()
  /** Releases (model and agent) with several valid manifests or a shared seq, from the last tick. */
  conflicts: ReleaseConflict[] = []
  private readonly c: DecisionsComponents
  private readonly noted = new Set<string>()

  constructor(components: DecisionsComponents) {
    this.c = components
  }

  /** Decides every release; returns whether a verdict misses evidence (ask peers for it). */
  decideAll(publishVerdicts: boolean): { wantEvidence: boolean } {
    const { store, identity } = this.c.ctx
    const now = this.c.now()
    const snap = snapshot(store, now)
    const resolved = resolveReleases(store.releases().map((r) => ({ manifest: r.message, digest: r.digest })))
    for (const c of resolved.conflicts) this.conflict(c)
    const manifests = resolved.releases.map((r) => r.manifest)
    const enrolled = publishVerdicts && store.isEnrolled(identity.peerId, now)
    let wantEvidence = false
    for (const { manifest: m, digest } of resolved.releases) {
      const key = releaseKey(m)
      if (this.c.memory.isConflicted(key)) continue // conflicted on an earlier tick: refused for good
      try {
        if (this.decideOne(this.entries, snap, manifests, m, digest, now, enrolled)) wantEvidence = true
        this.c.errors.ok(key)
      } catch (err) {
        this.c.errors.fail(key, err)
      }
    }
    const agents = resolveAgentReleases(store.list('AgentRelease'))
    this.conflicts = [...resolved.conflicts, ...agents.conflicts]
    for (const c of agents.conflicts) this.conflict(c)
    const subjects = agents.releases.map((a) => a.manifest)
    for (const { manifest: m, digest } of agents.releases) {
      const key = releaseKey(m)
      if (this.c.memory.isConflicted(key)) continue
      try {
        if (this.decideOne(this.agents, snap, subjects, m, digest, now, enrolled)) wantEvidence = true
        this.c.errors.ok(key)
      } catch (err) {
        this.c.errors.fail(key, err)
      }
    }
    return { wantEvidence }
  }

  /** Whether a release is conflicted (as known here). */
  isConflicted(key: string): boolean {
    return this.c.memory.isConflicted(key)
  }

  /** The version this device should run for a model now, from the latest decisions. */
  target(model: string): string | null {
    const me = this.c.ctx.identity.peerId
    const candidates = [...this.entries.values()]
      .filter((e) => e.manifest.model === model)
      .map((e) => ({
        version: e.manifest.version,
        seq: e.manifest.seq,
        activation: activationFor(me, e.decision.view, e.decision.assignment),
      }))
    return chooseTarget(candidates, this.c.memory.bad(model))
  }

  /**
   * The agent version this device should run now: the highest-seq agent release whose stage admits
   * it and that the fleet has not aborted (the rule of `target` for a model). Null: none admitted.
   */
  agentTarget(): string | null {
    const me = this.c.ctx.identity.peerId
    const candidates = [...this.agents.values()].map((e) => ({
      version: e.manifest.version,
      seq: e.manifest.seq,
      activation: activationFor(me, e.decision.view, e.decision.assignment),
    }))
    return chooseTarget(candidates, this.c.memory.bad(AGENT_LINEAGE))
  }

  /** Decides one release; true when a verdict misses evidence. Throws what `decide` throws. */
  private decideOne<M extends RolloutSubject>(
    entries: Map<string, Entry<M>>,
    snap: StoreSnapshot,
    manifests: M[],
    m: M,
    digest: string,
    now: number,
    enrolled: boolean,
  ): boolean {
    const key = releaseKey(m)
    const mine = (x: { model: string; version: string }) => x.model === m.model && x.version === m.version
    const sig = [
      digest,
      snap.enrollments.length,
      snap.revocations.length,
      snap.commands.filter(mine).length,
      snap.verdicts.filter((v) => mine(v.verdict)).length,
    ].join('/')
    const had = entries.get(key)
    if (had !== undefined && had.sig === sig && settled(had, entries)) return false
    const { memory } = this.c
    const previous = previousRelease(manifests, m, (k) => memory.isAborted(k) || memory.isConflicted(k))
    const d = (this.c.decide ?? decideRelease)(snap, m, previous, stateForManifest(memory.state(key), m), now)
    entries.set(key, { manifest: m, digest, previous, decision: d, sig })
    memory.setState(key, d.state as RolloutState)
    if (d.view.aborted && memory.markAborted(key)) {
      this.c.ctx.logger.warn({ release: key, by: d.view.abortedBy }, 'release aborted by the fleet')
    }
    if (d.verdictToPublish && enrolled) void this.c.verdicts.publish(key, d)
    return d.pending.length > 0
  }

  /** A release with several manifests: refuse it if conflicted; log a duplicate once. */
  private conflict(c: ReleaseConflict): void {
    const key = `${c.model}@${c.version}`
    if (c.outcome === 'conflicted') {
      this.entries.delete(key)
      this.agents.delete(key)
      if (this.c.memory.markConflicted(key)) {
        this.c.ctx.logger.error(
          { release: key, manifests: c.manifests.map((x) => x.digest), seq_shared_with: c.seq_shared_with },
          c.reason === 'seq'
            ? 'release refused: another version of the model has the same seq'
            : 'release refused: several valid manifests name different files',
        )
      }
      this.c.errors.fail(key, conflictError(c))
      return
    }
    const id = `${key}/${c.manifests.map((x) => x.digest).join(',')}`
    if (this.noted.has(id)) return
    this.noted.add(id)
    this.c.ctx.logger.warn(
      { release: key, chosen: c.chosen, manifests: c.manifests.map((x) => x.digest) },
      'several manifests for the same file of one release: the lowest seq counts',
    )
  }
}

/** Aborted, or promoted and superseded by a newer promoted release of the model. */
function settled<M extends RolloutSubject>(e: Entry<M>, entries: ReadonlyMap<string, Entry<M>>): boolean {
  const v = e.decision.view
  if (v.aborted) return true
  if (e.decision.status.phase !== 'promoted') return false
  for (const o of entries.values()) {
    if (o.manifest.model === e.manifest.model && o.manifest.seq > e.manifest.seq) {
      if (o.decision.status.phase === 'promoted') return true
    }
  }
  return false
}
