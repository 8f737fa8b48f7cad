/**
 * Prometheus metrics and the `/status` section of the message store's disk health, on their own
 * registry (served by GET /metrics beside the rollout metrics, node/device-services.ts), read at
 * scrape time from `MessageStore.health`. docs/metrics.md lists them.
 *
 * `code` is the system error of a refused append, from a short fixed list (`ENOSPC`, `EDQUOT`,
 * `EIO`, `EROFS`, `EACCES`, `EFBIG`, `EMFILE`), else `OTHER`.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { StoreHealth } from './store-load.ts'

/** System error codes exported as they are; any other is `OTHER`. */
export const STORE_ERROR_CODES = ['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EFBIG', 'EMFILE'] as const

/** What the metrics read. */
export interface StoreMetricsSource {
  readonly health: StoreHealth
  readonly size: number
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
  return { registry }
}
