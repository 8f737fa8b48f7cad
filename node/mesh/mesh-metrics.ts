/**
 * Prometheus metrics of the mesh (peers, gossip, ingest, anti-entropy) and the process's default
 * metrics (prom-client's `collectDefaultMetrics`: `process_start_time_seconds` shows restarts,
 * `process_cpu_seconds_total`, `nodejs_eventloop_lag_seconds`, …), on a registry of their own,
 * read at scrape time from the counters the services keep (the same figures as `GET /status`).
 * docs/metrics.md lists them.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import { EVENT_LOOP_MONITOR_RESOLUTION_MS } from './constants.ts'

/** What the metrics read: the mesh node (its counters exist while it runs). */
export interface MeshMetricsSource {
  readonly state: string
  peers(): string[]
  /** mDNS discovery's counters (node/discovery/mdns-discovery.ts); kept across restarts. */
  readonly mdnsStats?: {
    readonly queries: number
    readonly queryFailures: number
    readonly answers: Readonly<Record<string, number>>
  }
  /** Peers banned for a gossip score under the graylist threshold (peer-bans.ts). */
  readonly bans?: { readonly bans: number; readonly refused: number; active(): unknown[] }
  readonly ingest: {
    readonly counters: { accepted: number; duplicate: number; rejected: number }
    readonly rejectedByCode: ReadonlyMap<string, number>
  }
  readonly gossip: {
    readonly counters: { accepted: number; ignored: number; rejected: number; dropped?: number }
    /** Messages dropped unread for their peer's ingest budget, by limit. */
    readonly budget?: { readonly drops: Readonly<Record<string, number>> }
  }
  readonly antiEntropy: {
    readonly counters: { rounds: number; received: number; sent: number; failures: number; errors: number }
    /** Rounds run per protocol version (version 1: peers not yet upgraded). */
    readonly versions?: { v1: number; v2: number }
    /** What the per-peer budgets refused (anti-entropy-budget.ts). */
    readonly budgets?: {
      readonly counters: { readonly overBudget: Readonly<Record<string, number>>; readonly disconnects: number }
    }
  }
}

/**
 * prom-client default gauges whose names break the Prometheus convention (a gauge named `_total`:
 * `promtool check metrics` refuses them); dropped so the exposition stays clean. Their figures are
 * also in `nodejs_active_handles`, `nodejs_active_requests` and `nodejs_active_resources`.
 */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]

/** A counter whose value is read from `read()` at scrape time (one series per label value). */
function readCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => Array<[Record<string, string>, number]>,
  labelNames: string[] = [],
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset()
      for (const [labels, n] of read()) this.inc(labels, n)
    },
  })
}

/** The mesh's metrics and the default process metrics on a registry of their own. */
export function createMeshMetrics(mesh: MeshMetricsSource, prefix = 'llmesh_'): { registry: Registry } {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITOR_RESOLUTION_MS })
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name)
  const running = (): boolean => mesh.state === 'running'
  new Gauge({
    name: `${prefix}mesh_peers`,
    help: 'Peers this node has a connection to now',
    registers: [registry],
    collect() {
      this.set(running() ? mesh.peers().length : 0)
    },
  })
  readCounter(
    registry,
    `${prefix}ingest_messages_total`,
    'Signed messages offered to this node (gossip, anti-entropy, API), by outcome: accepted (verified and stored), duplicate, rejected',
    () => (running() ? Object.entries(mesh.ingest.counters).map(([outcome, n]) => [{ outcome }, n]) : []),
    ['outcome'],
  )
  readCounter(
    registry,
    `${prefix}ingest_rejections_total`,
    'Signed messages this node refused, by error code (ERR_BAD_SIGNATURE, ERR_NOT_ENROLLED, ERR_EXPIRED, ERR_QUOTA, …): which kind of bad input the fleet is seeing',
    () => (running() ? [...mesh.ingest.rejectedByCode].map(([code, n]) => [{ code }, n]) : []),
    ['code'],
  )
  readCounter(
    registry,
    `${prefix}gossip_messages_total`,
    'gossipsub messages validated by this node, by outcome: accepted, ignored (duplicate or not for us), rejected (invalid: the sender loses score)',
    () => (running() ? Object.entries(mesh.gossip.counters).map(([outcome, n]) => [{ outcome }, n]) : []),
    ['outcome'],
  )
  readCounter(
    registry,
    `${prefix}gossip_budget_drops_total`,
    'gossipsub messages dropped unread because their delivering peer was over its ingest budget, by limit: messages, bytes, cpu (the peer loses score)',
    () => {
      const drops = running() ? mesh.gossip.budget?.drops : undefined
      return drops === undefined ? [] : Object.entries(drops).map(([limit, n]) => [{ limit }, n])
    },
    ['limit'],
  )
  const ae = () => mesh.antiEntropy.counters
  readCounter(registry, `${prefix}anti_entropy_rounds_total`, 'Anti-entropy rounds completed with a peer', () =>
    running() ? [[{}, ae().rounds]] : [],
  )
  readCounter(
    registry,
    `${prefix}anti_entropy_protocol_rounds_total`,
    'Anti-entropy rounds by protocol version, either side: 2 (range-based reconciliation), 1 (whole id lists, a peer not yet upgraded)',
    () => {
      // the node's services exist only while it runs
      const v = running() ? mesh.antiEntropy.versions : undefined
      return v === undefined
        ? []
        : [
            [{ version: '1' }, v.v1],
            [{ version: '2' }, v.v2],
          ]
    },
    ['version'],
  )
  readCounter(
    registry,
    `${prefix}anti_entropy_failures_total`,
    'Anti-entropy rounds that failed (peer gone, timed out, hostile bytes) or raised an error on this node',
    () =>
      running()
        ? [
            [{ kind: 'round' }, ae().failures],
            [{ kind: 'error' }, ae().errors],
          ]
        : [],
    ['kind'],
  )
  readCounter(
    registry,
    `${prefix}anti_entropy_messages_total`,
    'Messages anti-entropy moved, by direction: received (new to this node) or sent',
    () =>
      running()
        ? [
            [{ direction: 'received' }, ae().received],
            [{ direction: 'sent' }, ae().sent],
          ]
        : [],
    ['direction'],
  )
  readCounter(
    registry,
    `${prefix}anti_entropy_budget_refusals_total`,
    'Anti-entropy frames refused because their peer was over its budget, by limit: frames, bytes, cpu; invalid: peers disconnected for too many invalid frames',
    () => {
      const c = running() ? mesh.antiEntropy.budgets?.counters : undefined
      if (c === undefined) return []
      return [
        ...Object.entries(c.overBudget).map(([limit, n]): [Record<string, string>, number] => [{ limit }, n]),
        [{ limit: 'invalid' }, c.disconnects],
      ]
    },
    ['limit'],
  )
  readCounter(
    registry,
    `${prefix}mesh_peer_bans_total`,
    'Peers banned for a gossip score under the graylist threshold (a flooder): each ban closes its connections for 5 min, doubling on each repeat',
    () => (mesh.bans === undefined ? [] : [[{}, mesh.bans.bans]]),
    [],
  )
  readCounter(
    registry,
    `${prefix}mesh_ban_refusals_total`,
    'Connections refused or closed because their peer is banned',
    () => (mesh.bans === undefined ? [] : [[{}, mesh.bans.refused]]),
    [],
  )
  readCounter(
    registry,
    `${prefix}mdns_queries_total`,
    'mDNS queries this node sent (the intervals back off from 5 s to 60 s while it has peers)',
    () => (mesh.mdnsStats === undefined ? [] : [[{}, mesh.mdnsStats.queries]]),
    [],
  )
  readCounter(
    registry,
    `${prefix}mdns_query_failures_total`,
    'mDNS queries that failed to send (the socket closed or failed); the schedule goes on',
    () => (mesh.mdnsStats === undefined ? [] : [[{}, mesh.mdnsStats.queryFailures]]),
    [],
  )
  readCounter(
    registry,
    `${prefix}mdns_answers_total`,
    'mDNS answers heard about other peers, by outcome: new, changed (addresses), refreshed (handed to the peer store again), repeat (ignored), limited (dropped: too many discoveries per window, e.g. forged answers)',
    () =>
      mesh.mdnsStats === undefined
        ? []
        : Object.entries(mesh.mdnsStats.answers).map(([outcome, n]) => [{ outcome }, n]),
    ['outcome'],
  )
  new Gauge({
    name: `${prefix}mesh_peers_banned`,
    help: 'Peers banned now (gossip score under the graylist threshold)',
    registers: [registry],
    collect() {
      this.set(mesh.bans?.active().length ?? 0)
    },
  })
  return { registry }
}
