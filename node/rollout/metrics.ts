/**
 * Prometheus metrics of the node's identity and of the fleet's rollouts as this node sees them,
 * on their OWN registry (`metrics.registry`), served at GET /metrics on every node, the seed
 * included (node/device-services.ts). docs/metrics.md lists every metric, label and help text.
 *
 * - State (gauges, computed at scrape time from the rollout controller): `llmesh_node_info`,
 *   `llmesh_model_active_info`, `llmesh_model_deactivated_info`, `llmesh_rollout_release_state`,
 *   `llmesh_rollout_stage_info` (the stage as a label, for joins on `model_version`),
 *   `llmesh_rollout_release_stage`, `llmesh_rollout_release_paused_since_timestamp_seconds`,
 *   `llmesh_rollout_gate_outcome`.
 * - Actions of this device (counters, from the controller's events, node/rollout/rollout-events.ts):
 *   activations, local rollbacks, fleet rollbacks, deactivations; and agent versions the wrapper
 *   rolled back (`llmesh_agent_rollbacks_total`, counted once each when the previous version starts).
 * - Faults (counters read at scrape time): `llmesh_rollout_release_errors_total` (a release whose
 *   evaluation failed or that is conflicted; every other release kept moving) and
 *   `llmesh_loop_errors_total` (an item a periodic loop failed on; the loop went on).
 *
 * `llmesh_rollout_release_state` is a state set (as kube-state-metrics' `kube_pod_status_phase`):
 * one series per state the release can be in, 1 for the current one and 0 for the others, so
 * `llmesh_rollout_release_state{state="aborted"} == 1` selects aborted releases and the 0 → 1 change
 * is visible to `offset`. Labels are bounded: model, version, trigger and reasons from short fixed
 * lists, state from the release's policy; only the newest `maxReleasesPerModel` releases of each
 * model are exported. Never a request id, never prompt text.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import pkg from '../../package.json' with { type: 'json' }
import type { Role } from '../daemon.ts'
import type { Deactivation } from './persisted.ts'
import type { ReleaseRolloutStatus } from './plan.ts'
import type { RolloutEvent, RolloutEventListener } from './rollout-events.ts'

/** Releases exported per model (the newest by seq). */
export const RELEASE_METRICS_PER_MODEL = 5

/** States every release can be in besides its policy's stage names. */
export const RELEASE_PHASES = ['paused', 'promoted', 'aborted'] as const

/** Who this node is (the labels of `llmesh_node_info`). */
export interface NodeInfo {
  peerId: string
  role: Role
  fleet: string
  /** llmesh's version (default: package.json's). */
  version?: string
}

/** What the metrics read from the rollout controller. */
export interface RolloutMetricsSource {
  statusJson(): { releases: ReleaseRolloutStatus[]; deactivated: Record<string, Deactivation> }
  activeVersions(): Promise<Array<{ model: string; version: string }>>
  onEvent(fn: RolloutEventListener): () => void
  /** Failures per (model, version, code) since start (releases whose evaluation threw, or conflicted). */
  releaseErrorCounts?(): Array<{ model: string; version: string; code: string; count: number }>
}

/** What the metrics read about the node's periodic loops (node/telemetry/faults.ts's LoopErrors). */
export interface LoopErrorsSource {
  /** Failures per loop since start. */
  totals(): Record<string, number>
}

/** Options of the metrics. */
export interface RolloutMetricsInit {
  /** Metric name prefix. Default 'llmesh_'. */
  prefix?: string
  /** Releases exported per model, newest first. Default RELEASE_METRICS_PER_MODEL. */
  maxReleasesPerModel?: number
  /** This node's identity, if known at construction (else setNode()). */
  node?: NodeInfo
}

/** A deactivation's reason text (`release aborted`, `local rollback: oom`, …) as a bounded label. */
export function deactivationReason(text: string): 'aborted' | 'conflicted' | 'failed' | 'local-rollback' | 'other' {
  if (text === 'release aborted') return 'aborted'
  if (text === 'release conflicted') return 'conflicted'
  if (text === 'failed on this device') return 'failed'
  if (text.startsWith('local rollback')) return 'local-rollback'
  return 'other'
}

/** The states of a release's state set: its policy's stages that a rollout shows, and the phases. */
export function releaseStates(r: Pick<ReleaseRolloutStatus, 'state' | 'cohorts'>): string[] {
  // cohorts lists the policy's stages in order, then `excluded`; the last stage shows as `promoted`
  const stages = Object.keys(r.cohorts).filter((k) => k !== 'excluded')
  return [...new Set([...stages.slice(0, -1), ...RELEASE_PHASES, r.state])]
}

/** The `issued_at` (ms) of the pause in force of a paused release, or undefined. */
export function pausedSince(r: Pick<ReleaseRolloutStatus, 'state' | 'commands'>): number | undefined {
  if (r.state !== 'paused') return undefined
  let since: number | undefined
  for (const c of r.commands) {
    if (c.action === 'pause') since ??= c.issued_at
    else if (c.action === 'resume') since = undefined
  }
  return since
}

/** Rollout and identity metrics on a private registry. */
export class RolloutMetrics {
  readonly registry = new Registry()
  private node: NodeInfo | undefined
  private source: RolloutMetricsSource | undefined
  private loops: LoopErrorsSource | undefined
  private readonly maxReleases: number
  private readonly activations: Counter<string>
  private readonly localRollbacks: Counter<string>
  private readonly fleetRollbacks: Counter<string>
  private readonly deactivations: Counter<string>
  private readonly agentRollbacks: Counter<string>

  constructor(init: RolloutMetricsInit = {}) {
    const p = init.prefix ?? 'llmesh_'
    this.node = init.node
    this.maxReleases = init.maxReleasesPerModel ?? RELEASE_METRICS_PER_MODEL
    const registers = [this.registry]
    const rel = ['model', 'model_version']
    const counter = (name: string, help: string, extra: string[] = []) =>
      new Counter({ name: p + name, help, labelNames: [...rel, ...extra], registers })
    this.activations = counter('rollout_activations_total', 'Releases activated on this device (going forward)')
    this.localRollbacks = counter(
      'rollout_local_rollbacks_total',
      'Versions this device rolled back by itself (load or probe failure, OOM, restart loop)',
      ['trigger'],
    )
    this.fleetRollbacks = counter(
      'rollout_fleet_rollbacks_total',
      'Versions this device went back from because the fleet aborted them',
    )
    this.deactivations = counter(
      'rollout_deactivations_total',
      'Models this device deactivated (a bad version and nothing good to go back to)',
      ['reason'],
    )
    this.agentRollbacks = new Counter({
      name: `${p}agent_rollbacks_total`,
      help: 'Agent (llmesh) versions the wrapper rolled back on this device (exited or not ready within the health window)',
      labelNames: ['version'],
      registers,
    })
    const source = () => this.source
    const loops = () => this.loops
    new Counter({
      name: `${p}rollout_release_errors_total`,
      help: 'Evaluations of a release that failed (an exception, or several valid manifests naming different files)',
      labelNames: [...rel, 'code'],
      registers,
      collect() {
        this.reset()
        for (const e of source()?.releaseErrorCounts?.() ?? [])
          this.inc({ model: e.model, model_version: e.version, code: e.code }, e.count)
      },
    })
    new Counter({
      name: `${p}loop_errors_total`,
      help: 'Items a periodic loop failed on (the loop went on with the next item)',
      labelNames: ['loop'],
      registers,
      collect() {
        this.reset()
        for (const [loop, n] of Object.entries(loops()?.totals() ?? {})) this.inc({ loop }, n)
      },
    })
    const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge<string>) => Promise<void>) =>
      new Gauge({
        name: p + name,
        help,
        labelNames,
        registers,
        async collect() {
          this.reset()
          await collect(this)
        },
      })
    gauge(
      'node_info',
      'This node: peer id, role (node or seed), fleet and llmesh version; always 1',
      ['peer_id', 'role', 'fleet', 'version'],
      async (g) => {
        const n = this.node
        if (n !== undefined)
          g.set({ peer_id: n.peerId, role: n.role, fleet: n.fleet, version: n.version ?? pkg.version }, 1)
      },
    )
    gauge('agent_info', 'The agent (llmesh) version this node runs; always 1', ['version'], async (g) => {
      if (this.node !== undefined) g.set({ version: this.node.version ?? pkg.version }, 1)
    })
    gauge('model_active_info', 'The version this device serves (loaded and probed); always 1', rel, async (g) => {
      for (const a of (await this.source?.activeVersions()) ?? [])
        g.set({ model: a.model, model_version: a.version }, 1)
    })
    gauge(
      'model_deactivated_info',
      'A model this device deactivated, with the bad version and why; always 1',
      [...rel, 'reason'],
      async (g) => {
        for (const [model, d] of Object.entries(this.source?.statusJson().deactivated ?? {})) {
          g.set({ model, model_version: d.version, reason: deactivationReason(d.reason) }, 1)
        }
      },
    )
    gauge(
      'rollout_release_state',
      "A release's rollout state as this node sees it: 1 for the current state, 0 for the others",
      [...rel, 'state'],
      async (g) => {
        for (const r of this.releases()) {
          for (const s of releaseStates(r))
            g.set({ model: r.model, model_version: r.version, state: s }, s === r.state ? 1 : 0)
        }
      },
    )
    gauge(
      'rollout_stage_info',
      "A release's rollout stage as this node sees it (its state: the stage name, paused, promoted or aborted); always 1. Join on model_version for a request series' stage",
      [...rel, 'rollout_stage'],
      async (g) => {
        for (const r of this.releases()) g.set({ model: r.model, model_version: r.version, rollout_stage: r.state }, 1)
      },
    )
    gauge(
      'rollout_release_stage',
      "A release's current stage index in its policy (0 = first stage)",
      rel,
      async (g) => {
        for (const r of this.releases()) g.set({ model: r.model, model_version: r.version }, r.stage)
      },
    )
    gauge(
      'rollout_release_paused_since_timestamp_seconds',
      'When the pause of a paused release was issued (Unix seconds); absent when not paused',
      rel,
      async (g) => {
        for (const r of this.releases()) {
          const since = pausedSince(r)
          if (since !== undefined) g.set({ model: r.model, model_version: r.version }, since / 1000)
        }
      },
    )
    gauge(
      'rollout_gate_outcome',
      "The outcome of a release's gate at its current stage: 1 for the current outcome, 0 for the others",
      [...rel, 'outcome'],
      async (g) => {
        for (const r of this.releases()) {
          if (r.gate === null) continue
          for (const o of ['pass', 'fail', 'inconclusive']) {
            g.set({ model: r.model, model_version: r.version, outcome: o }, o === r.gate.outcome ? 1 : 0)
          }
        }
      },
    )
  }

  /** Sets this node's identity (`llmesh_node_info`). */
  setNode(node: NodeInfo): void {
    this.node = node
  }

  /** Reads state from the controller at scrape time and counts its events. Returns a function that unbinds. */
  bindController(source: RolloutMetricsSource): () => void {
    this.source = source
    const off = source.onEvent((e) => this.record(e))
    return () => {
      off()
      if (this.source === source) this.source = undefined
    }
  }

  /** Reads the failures of the node's periodic loops at scrape time. */
  bindLoops(loops: LoopErrorsSource): void {
    this.loops = loops
  }

  /** Counts one action of this device. */
  record(e: RolloutEvent): void {
    const lv = { model: e.model, model_version: e.version }
    switch (e.kind) {
      case 'activation':
        this.activations.inc(lv)
        break
      case 'local-rollback':
        this.localRollbacks.inc({ ...lv, trigger: e.trigger })
        break
      case 'fleet-rollback':
        this.fleetRollbacks.inc(lv)
        break
      case 'deactivation':
        this.deactivations.inc({ ...lv, reason: deactivationReason(e.reason) })
        break
    }
  }

  /** Counts an agent version the wrapper rolled back (node/agent-update/: once per recorded failure). */
  agentRolledBack(version: string): void {
    this.agentRollbacks.inc({ version })
  }

  /** The releases exported: the newest `maxReleases` of each model. */
  private releases(): ReleaseRolloutStatus[] {
    const all = this.source?.statusJson().releases ?? []
    const byModel = new Map<string, ReleaseRolloutStatus[]>()
    for (const r of all) byModel.set(r.model, [...(byModel.get(r.model) ?? []), r])
    return [...byModel.values()].flatMap((list) => list.sort((a, b) => b.seq - a.seq).slice(0, this.maxReleases))
  }
}

/** Creates the rollout metrics. */
export function createRolloutMetrics(init: RolloutMetricsInit = {}): RolloutMetrics {
  return new RolloutMetrics(init)
}
