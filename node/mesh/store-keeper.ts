/**
 * The message store's retention and quota bookkeeping (the rules are in store-retention.ts).
 *
 * How it works:
 * - `admit(m)` runs before a message is written: an id retention dropped before, a report the
 *   rules would drop at once, or a superseded enrollment is not admitted (`put` answers "already
 *   known"); a device message past its signer's quota of that type (count or wire bytes, with the
 *   appends still in flight counted) first makes room by dropping that signer's own reports the
 *   rules drop anyway, and is refused with StoreQuotaError (`ERR_QUOTA`) when that is not enough.
 * - `sweep(now)` is the full pass (`MessageStore.prune`): it unindexes what the rules drop and
 *   remembers the ids (bounded, oldest forgotten first) so anti-entropy does not fetch them again.
 * - The report horizon depends on releases and commands only: it is cached and recomputed when one
 *   of those arrives.
 */
import type { DeviceEnrollment, HealthReport } from '../../protocols/schemas/index.ts'
import { type MessageIndex, usageKey } from './message-index.ts'
import {
  FINISHED_VERDICTS_KEPT,
  FORGOTTEN_IDS_MAX,
  REPORT_HORIZON_MIN_MS,
  REPORT_QUOTA_BYTES,
  REPORT_QUOTA_COUNT,
  REPORTS_KEPT_NEWEST,
  VERDICT_QUOTA_BYTES,
  VERDICT_QUOTA_COUNT,
} from './store-constants.ts'
import { type QuotaLimit, StoreQuotaError } from './store-errors.ts'
import {
  DROP_RULES,
  type DropRule,
  finishedReleases,
  newerReports,
  type RetentionRules,
  reportHorizon,
  reportRule,
  retentionDrops,
  supersededEnrollment,
} from './store-retention.ts'
import type { StoredMessage } from './types.ts'

/** A quota: most messages and wire bytes of one type one signer may have stored. */
export interface Quota {
  count: number
  bytes: number
}

/** Options of retention and quotas (defaults in store-constants.ts). */
export interface KeeperInit extends Partial<RetentionRules> {
  retentionMs: number
  reportQuota?: Quota
  verdictQuota?: Quota
  forgottenMax?: number
}

/** What retention and quotas did since start (for /status and /metrics). */
export interface KeeperStats {
  dropped: Record<DropRule, number>
  /** Refusals by type and limit, e.g. `HealthReport:bytes`. */
  quotaRefused: Record<string, number>
  /** Arrivals not admitted because retention would drop them at once (or did before). */
  notAdmitted: number
}

/** Retention and quotas over one store's index. */
export class StoreKeeper {
  readonly rules: RetentionRules
  readonly quotas: Record<'HealthReport' | 'Verdict', Quota>
  readonly stats: KeeperStats
  private readonly ix: MessageIndex
  private readonly forgotten = new Set<string>()
  private readonly forgottenMax: number
  private readonly inflight = new Map<string, { count: number; bytes: number }>()
  private horizon: number | undefined

  constructor(ix: MessageIndex, init: KeeperInit) {
    this.ix = ix
    this.rules = {
      retentionMs: init.retentionMs,
      minHorizonMs: init.minHorizonMs ?? Math.min(REPORT_HORIZON_MIN_MS, init.retentionMs),
      keepNewest: init.keepNewest ?? REPORTS_KEPT_NEWEST,
      finishedVerdictsKept: init.finishedVerdictsKept ?? FINISHED_VERDICTS_KEPT,
    }
    this.quotas = {
      HealthReport: init.reportQuota ?? { count: REPORT_QUOTA_COUNT, bytes: REPORT_QUOTA_BYTES },
      Verdict: init.verdictQuota ?? { count: VERDICT_QUOTA_COUNT, bytes: VERDICT_QUOTA_BYTES },
    }
    this.forgottenMax = init.forgottenMax ?? FORGOTTEN_IDS_MAX
    this.stats = {
      dropped: Object.fromEntries(DROP_RULES.map((r) => [r, 0])) as Record<DropRule, number>,
      quotaRefused: {},
      notAdmitted: 0,
    }
  }

  /** Whether retention dropped this id (it is not fetched or stored again). */
  wasDropped(id: string): boolean {
    return this.forgotten.has(id)
  }

  /** The report horizon now (see store-retention.ts). */
  reportHorizon(): number {
    this.horizon ??= reportHorizon(this.ix, finishedReleases(this.ix), this.rules)
    return this.horizon
  }

  /** A release or command arrived: the horizon may change. */
  changed(m: StoredMessage): void {
    if (m.type === 'ReleaseManifest' || m.type === 'OperatorCommand') this.horizon = undefined
  }

  /**
   * Judges a message before it is written: true to store it, false when retention would not keep
   * it; throws StoreQuotaError past its signer's quota. `drop` unindexes what makes room.
   */
  admit(m: StoredMessage, now: number, drop: (m: StoredMessage, rule: DropRule) => void): boolean {
    if (this.forgotten.has(m.digest) || this.inadmissible(m, now)) {
      this.stats.notAdmitted++
      return false
    }
    if (m.type !== 'HealthReport' && m.type !== 'Verdict') return true
    let over = this.over(m)
    if (over !== undefined && m.type === 'HealthReport') {
      this.makeRoom(m.signer, now, drop)
      over = this.over(m)
    }
    if (over === undefined) return true
    const key = `${m.type}:${over}`
    this.stats.quotaRefused[key] = (this.stats.quotaRefused[key] ?? 0) + 1
    const q = this.quotas[m.type]
    throw new StoreQuotaError(
      m.signer,
      m.type,
      over,
      `${m.signer} holds its quota of ${m.type} messages (${q.count} messages, ${q.bytes} bytes)`,
    )
  }

  /** Counts an admitted message's append in flight against its signer's quota, until `settle`. */
  reserve(m: StoredMessage): () => void {
    const key = usageKey(m.signer, m.type)
    const u = this.inflight.get(key) ?? { count: 0, bytes: 0 }
    u.count++
    u.bytes += m.bytes.byteLength
    this.inflight.set(key, u)
    return () => {
      u.count--
      u.bytes -= m.bytes.byteLength
      if (u.count === 0) this.inflight.delete(key)
    }
  }

  /** Drops every message the rules drop now; returns them. */
  sweep(now: number, drop: (m: StoredMessage, rule: DropRule) => void): number {
    this.horizon = undefined
    let n = 0
    for (const [id, rule] of retentionDrops(this.ix, now, this.rules)) {
      const m = this.ix.byDigest.get(id)
      if (m === undefined) continue
      drop(m, rule)
      n++
    }
    return n
  }

  /** Records a dropped message (called by the store's `drop`). */
  dropped(m: StoredMessage, rule: DropRule): void {
    this.stats.dropped[rule]++
    this.forgotten.add(m.digest)
    if (this.forgotten.size > this.forgottenMax) this.forgotten.delete(this.forgotten.values().next().value as string)
  }

  private inadmissible(m: StoredMessage, now: number): boolean {
    if (m.type === 'DeviceEnrollment') return supersededEnrollment(this.ix, m.message as DeviceEnrollment)
    if (m.type !== 'HealthReport') return false
    const r = m.message as HealthReport
    const newer = newerReports(this.ix, r.device, r.seq)
    return reportRule(m, newer, now, this.reportHorizon(), this.rules) !== undefined
  }

  private over(m: StoredMessage): QuotaLimit | undefined {
    const q = this.quotas[m.type as 'HealthReport' | 'Verdict']
    const key = usageKey(m.signer, m.type)
    const held = this.ix.usage.get(key)
    const flying = this.inflight.get(key)
    const count = (held?.count ?? 0) + (flying?.count ?? 0) + 1
    const bytes = (held?.bytes ?? 0) + (flying?.bytes ?? 0) + m.bytes.byteLength
    if (count > q.count) return 'count'
    if (bytes > q.bytes) return 'bytes'
    return undefined
  }

  /** Drops this signer's reports that the rules drop now. */
  private makeRoom(signer: string, now: number, drop: (m: StoredMessage, rule: DropRule) => void): void {
    const mine = this.ix
      .collect(this.ix.byDevice.get(signer))
      .filter((x): x is StoredMessage<HealthReport> => x.type === 'HealthReport')
      .sort((a, b) => b.message.seq - a.message.seq)
    const horizon = this.reportHorizon()
    mine.forEach((x, i) => {
      const rule = reportRule(x, i, now, horizon, this.rules)
      if (rule !== undefined) drop(x, rule)
    })
  }
}
