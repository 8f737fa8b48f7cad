/**
 * Prometheus metrics and the `/status` section of the message store's disk health, on their own
 * registry (served by GET /metrics beside the rollout metrics, node/device-services.ts), read at
 * scrape time from `MessageStore.health`. docs/metrics.md lists them.
 *
 * `code` is the system error of a refused append, from a short fixed list (`ENOSPC`, `EDQUOT`,
 * `EIO`, `EROFS`, `EACCES`, `EFBIG`, `EMFILE`), else `OTHER`.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { KeeperStats } from './store-keeper.ts'
import type { StoreHealth } from './store-load.ts'

/** System error codes exported as they are; any other is `OTHER`. */
export const STORE_ERROR_CODES = ['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EFBIG', 'EMFILE'] as const

/** What the metrics read. */
export interface StoreMetricsSource {
  readonly health: StoreHealth
  readonly size: number
  /** Wire bytes held (absent: not exported). */
  readonly wireBytes?: number
  /** Retention and quotas (absent: not exported). */
  readonly keeper?: { readonly stats: KeeperStats }
}

/** The `store` section of `GET /status`. */
export function storeStatus(store: StoreMetricsSource) {
  const h = store.health
  return {
    messages: store.size,
    disk_full: h.diskFull,
    write_errors: { ...h.writeErrors },
    last_error: h.lastError ?? null,
    load: { ...h.load },
    compactions: h.compactions,
    wire_bytes: store.wireBytes ?? null,
    retention: store.keeper === undefined ? null : structuredClone(store.keeper.stats),
  }
}

/** The store's metrics on a registry of their own. */
export function createStoreMetrics(store: StoreMetricsSource, prefix = 'llmesh_'): { registry: Registry } {
  const registry = new Registry()
  new Counter({
    name: `${prefix}store_write_errors_total`,
    help: 'Messages the store refused because their record could not be written (code: ENOSPC is a full disk)',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [errno, n] of Object.entries(store.health.writeErrors)) {
        const code = (STORE_ERROR_CODES as readonly string[]).includes(errno) ? errno : 'OTHER'
        this.inc({ code }, n)
      }
    },
  })
  new Gauge({
    name: `${prefix}store_disk_full`,
    help: '1 while the message store refuses new messages for a full disk (until an append succeeds), else 0',
    registers: [registry],
    collect() {
      this.set(store.health.diskFull ? 1 : 0)
    },
  })
  new Gauge({
    name: `${prefix}store_messages`,
    help: 'Messages the message store holds',
    registers: [registry],
    collect() {
      this.set(store.size)
    },
  })
  new Gauge({
    name: `${prefix}store_load_bad_records`,
    help: 'Unreadable records the last load of the message log skipped',
    registers: [registry],
    collect() {
      this.set(store.health.load.bad)
    },
  })
  new Gauge({
    name: `${prefix}store_wire_bytes`,
    help: 'Wire bytes of the messages the message store holds (its log is about 2.4 times that)',
    registers: [registry],
    collect() {
      this.set(store.wireBytes ?? 0)
    },
  })
  new Counter({
    name: `${prefix}store_quota_refusals_total`,
    help: 'Device messages refused because their signer held its quota of that type (ERR_QUOTA), by limit',
    labelNames: ['type', 'limit'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [key, n] of Object.entries(store.keeper?.stats.quotaRefused ?? {})) {
        const [type, limit] = key.split(':')
        this.inc({ type, limit }, n)
      }
    },
  })
  new Counter({
    name: `${prefix}store_retention_dropped_total`,
    help: 'Messages the retention rules dropped, by rule (docs/protocol.md, "Message retention")',
    labelNames: ['rule'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [rule, n] of Object.entries(store.keeper?.stats.dropped ?? {})) this.inc({ rule }, n)
    },
  })
  return { registry }
}
