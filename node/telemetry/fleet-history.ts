/**
 * FleetHistory: every node's bounded, downsampled memory of the fleet's signed health reports, so
 * the operator sees how a rollout went, not only where it stands.
 *
 * How it works: each HealthReport the store accepts is folded, at its window's end, into
 *   - per release (model@version), merged over the devices: a fine ring (1 min × 6 h) and a coarse
 *     ring (15 min × 7 days) of requests, errors, tokens, health events and the devices that served
 *     it, with a merged latency sketch per bucket (fleet p50/p95/p99 come from merged sketches);
 *   - per device: a fine ring (5 min × 6 h) and a coarse ring (1 h × 7 days) of requests, errors,
 *     CPU, RAM and temperature (sums and counts: means are exact over any bucket).
 * Memory is fixed per series (HistoryRing); series are bounded in number (the least recently
 * updated goes first), so the whole is bounded by `maxDevices × DEVICE_BYTES + maxReleases ×
 * RELEASE_BYTES` plus the sketches (bounded bins per bucket). It is saved to `history.json` (atomic
 * rename) every `persistIntervalMs` and at stop, and at start reports newer than the save are
 * folded in again from the store, so a restart keeps 7 days. Reports are signed and verified before
 * they get here; their window end is bounded by ingest (not in the future), and anything older than
 * a ring's horizon is dropped. What a query answers (points from buckets) is in history-points.ts.
 */
import type { HealthReport } from '../../protocols/schemas/index.ts'
import type { Logger } from '../logger.ts'
import type { StoredMessage } from '../mesh/types.ts'
import { HISTORY_MAX_DEVICES, HISTORY_MAX_RELEASES, HISTORY_PERSIST_INTERVAL_MS } from './constants.ts'
import {
  type DevicePoint,
  devicePoints,
  type FleetPoint,
  fleetPoints,
  type HistoryRange,
  type ReleasePoint,
  releasePoints,
} from './history-points.ts'
import { type DeviceSeries, newDeviceSeries, newReleaseSeries, type ReleaseSeries } from './history-series.ts'
import { loadHistory, saveHistory } from './history-store.ts'

export type { DevicePoint, FleetPoint, HistoryRange, ReleasePoint } from './history-points.ts'

/** Where reports come from: the message store. */
export interface HistorySource {
  on(event: 'message', fn: (m: StoredMessage) => void): unknown
  off(event: 'message', fn: (m: StoredMessage) => void): unknown
  list(type: 'HealthReport'): StoredMessage[]
}

/** Options. */
export interface FleetHistoryInit {
  /** Where `history.json` lives. */
  dataDir: string
  /** Devices kept (least recently reporting dropped first). Default HISTORY_MAX_DEVICES. */
  maxDevices?: number
  /** Releases kept (least recently reported dropped first). Default HISTORY_MAX_RELEASES. */
  maxReleases?: number
  persistIntervalMs?: number
}

/** What it uses. */
export interface FleetHistoryComponents {
  store: HistorySource
  logger: Logger
  now?: () => number
}

/** The fleet's history on this node. Long-lived: idempotent start()/stop(). */
export class FleetHistory {
  private readonly init: Required<FleetHistoryInit>
  private readonly c: FleetHistoryComponents
  private readonly now: () => number
  private readonly releases = new Map<string, ReleaseSeries>()
  private readonly devices = new Map<string, DeviceSeries>()
  private timer: NodeJS.Timeout | undefined
  private running = false
  /** receivedAt of the newest report folded in (saved: reports after it are folded at start). */
  private through = 0
  private saving: Promise<void> = Promise.resolve()
  private readonly onMessage = (m: StoredMessage): void => {
    if (m.type !== 'HealthReport') return
    try {
      this.fold(m.message as HealthReport, m.receivedAt)
    } catch (err) {
      this.c.logger.warn({ err: (err as Error).message }, 'history: a report could not be folded in')
    }
  }

  constructor(components: FleetHistoryComponents, init: FleetHistoryInit) {
    this.c = components
    this.now = components.now ?? Date.now
    this.init = {
      maxDevices: HISTORY_MAX_DEVICES,
      maxReleases: HISTORY_MAX_RELEASES,
      persistIntervalMs: HISTORY_PERSIST_INTERVAL_MS,
      ...init,
    }
  }

  async start(): Promise<void> {
    if (this.running) return
    this.running = true
    const saved = await loadHistory(this.init.dataDir, this.c.logger)
    if (saved !== undefined) {
      this.through = saved.through
      for (const [k, json] of Object.entries(saved.releases)) {
        const s = newReleaseSeries()
        if (s.load(json)) this.releases.set(k, s)
      }
      for (const [k, json] of Object.entries(saved.devices)) {
        const s = newDeviceSeries()
        if (s.load(json)) this.devices.set(k, s)
      }
    }
    const since = this.through
    for (const m of this.c.store.list('HealthReport')) if (m.receivedAt > since) this.onMessage(m)
    this.c.store.on('message', this.onMessage)
    this.timer = setInterval(() => void this.save(), this.init.persistIntervalMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    clearInterval(this.timer)
    this.c.store.off('message', this.onMessage)
    await this.save()
  }

  /** Folds one verified report in. */
  fold(h: HealthReport, receivedAt: number = this.now()): void {
    const now = this.now()
    const t = Math.min(h.window.end, now)
    this.through = Math.max(this.through, receivedAt)
    const dev = this.series(this.devices, h.device, newDeviceSeries, this.init.maxDevices, t)
    let requests = 0
    let errors = 0
    for (const s of h.inference) {
      requests += s.requests
      errors += s.errors
    }
    const hw = h.hardware
    const temp = hw.temp_c === undefined ? {} : { temp_sum: hw.temp_c, temp_n: 1 }
    dev.add(t, { reports: 1, requests, errors, cpu_sum: hw.cpu_pct, ram_sum: hw.ram_pct, ...temp }, now)
    const versions = new Set([...h.active, ...h.inference, ...h.events].map((x) => `${x.model}@${x.version}`))
    for (const key of versions) {
      const rel = this.series(this.releases, key, newReleaseSeries, this.init.maxReleases, t)
      const stats = h.inference.find((s) => `${s.model}@${s.version}` === key)
      const ev = h.events.find((e) => `${e.model}@${e.version}` === key)?.counts
      const active = h.active.some((a) => `${a.model}@${a.version}` === key)
      rel.add(
        t,
        h.device,
        {
          reports: 1,
          requests: stats?.requests ?? 0,
          errors: stats?.errors ?? 0,
          tokens_in: stats?.tokens_in ?? 0,
          tokens_out: stats?.tokens_out ?? 0,
          restarts: ev?.restarts ?? 0,
          ooms: ev?.ooms ?? 0,
          failures: ev === undefined ? 0 : ev.load_failures + ev.probe_failures + ev.rollbacks,
        },
        active,
        stats?.latency_ms,
        now,
      )
    }
  }

  /** What the history holds: its series and its memory. */
  summary(): { releases: string[]; devices: string[]; bytes: number; fine_ms: number; coarse_ms: number } {
    let bytes = 0
    for (const s of this.releases.values()) bytes += s.bytes
    for (const s of this.devices.values()) bytes += s.bytes
    const any = newReleaseSeries()
    return {
      releases: [...this.releases.keys()].sort(),
      devices: [...this.devices.keys()].sort(),
      bytes,
      fine_ms: any.fine.stepMs * any.fine.slots,
      coarse_ms: any.coarse.stepMs * any.coarse.slots,
    }
  }

  /** A release's points in [from, to]: fine buckets when the range is within the fine ring, else coarse. */
  release(model: string, version: string, from: number, to: number): HistoryRange<ReleasePoint> | undefined {
    const s = this.releases.get(`${model}@${version}`)
    return s === undefined ? undefined : releasePoints(s, from, to, this.now)
  }

  /** A device's points in [from, to]. */
  device(id: string, from: number, to: number): HistoryRange<DevicePoint> | undefined {
    const s = this.devices.get(id)
    return s === undefined ? undefined : devicePoints(s, from, to, this.now)
  }

  /** Devices reporting per coarse bucket against devices known by then (offline share). */
  fleet(from: number, to: number): HistoryRange<FleetPoint> {
    return fleetPoints(this.devices.values(), from, to, this.now)
  }

  /** Saves now (one save at a time). */
  save(): Promise<void> {
    const run = this.saving.then(() =>
      saveHistory(this.init.dataDir, {
        through: this.through,
        releases: Object.fromEntries([...this.releases].map(([k, s]) => [k, s.toJSON()])),
        devices: Object.fromEntries([...this.devices].map(([k, s]) => [k, s.toJSON()])),
      }).catch((err) => this.c.logger.warn({ err: (err as Error).message }, 'history: could not be saved')),
    )
    this.saving = run
    return run
  }

  /** The series of `key`, made (and the one with the oldest latest report dropped past `max`) if new. */
  private series<S extends { updated: number }>(
    map: Map<string, S>,
    key: string,
    make: () => S,
    max: number,
    at: number,
  ): S {
    let s = map.get(key)
    if (s === undefined) {
      if (map.size >= max) {
        let oldest: string | undefined
        let at = Number.POSITIVE_INFINITY
        for (const [k, v] of map) if (v.updated < at) [oldest, at] = [k, v.updated]
        if (oldest !== undefined) map.delete(oldest)
      }
      s = make()
      map.set(key, s)
    }
    s.updated = Math.max(s.updated, at)
    return s
  }
}
