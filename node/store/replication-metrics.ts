/**
 * Prometheus metrics of block replication, on their own registry (served by GET /metrics,
 * node/device-services.ts), read at scrape time from `Replicator.stats()`. Labels are bounded:
 * `direction` is `in` or `out`; per-peer figures stay in /status (`replication.peers`).
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { ReplicationStats } from './replicator.ts'

/** The replication metrics; `stats` returns undefined before distribution has started. */
export function createReplicationMetrics(
  stats: () => ReplicationStats | undefined,
  prefix = 'llmesh_',
): { registry: Registry } {
  const registry = new Registry()
  new Counter({
    name: `${prefix}replication_bytes_total`,
    help: 'Bytes of hypercore replication streams (encrypted protocol bytes) received (in) and sent (out)',
    labelNames: ['direction'],
    registers: [registry],
    collect() {
      const s = stats()
      this.reset()
      this.inc({ direction: 'in' }, s?.bytesIn ?? 0)
      this.inc({ direction: 'out' }, s?.bytesOut ?? 0)
    },
  })
  new Counter({
    name: `${prefix}replication_blocks_total`,
    help: 'Model blocks received and verified (in) and served to peers (out)',
    labelNames: ['direction'],
    registers: [registry],
    collect() {
      const s = stats()
      this.reset()
      this.inc({ direction: 'in' }, s?.blocksIn ?? 0)
      this.inc({ direction: 'out' }, s?.blocksOut ?? 0)
    },
  })
  new Counter({
    name: `${prefix}replication_invalid_blocks_total`,
    help: 'Blocks a peer sent that failed Merkle verification (refused, not stored)',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(stats()?.invalidBlocks ?? 0)
    },
  })
  new Counter({
    name: `${prefix}replication_recycles_total`,
    help: 'Times every replication session was restarted because a download stalled with no block arriving',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(stats()?.recycles ?? 0)
    },
  })
  new Gauge({
    name: `${prefix}replication_peers`,
    help: 'Peers with an active replication session',
    registers: [registry],
    collect() {
      const s = stats()
      this.set(s === undefined ? 0 : Object.values(s.peers).filter((p) => p.state === 'active').length)
    },
  })
  return { registry }
}
