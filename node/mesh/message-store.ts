/**
 * The node's memory of the fleet: every verified wire message, by id (`digest`: the hash of its
 * canonical content and signer, see protocols/signing/message-id.ts), indexed by type, model and
 * device, kept in memory and appended to `<data>/messages.jsonl` so a restart keeps what it knew.
 * A message is accepted (`put` resolves, its events fire, it is in memory) only once its record is
 * durably on disk (node/mesh/log-writer.ts: fsync, group commit); an append that fails (a full
 * disk) refuses the message with a StoreWriteError and leaves memory as the disk is. Load drops a
 * torn tail, skips unreadable records, and compacts only when it must (node/mesh/store-load.ts).
 * Two envelopes of one message share the id and are stored once (the first kept). What the store
 * keeps follows the retention rules and per-signer quotas (store-retention.ts, store-keeper.ts;
 * docs/protocol.md, "Message retention"): applied to each arrival by `put`, to everything by
 * `prune` (periodic, and after load); once the records dropped outweigh the live ones, the log is
 * compacted in place (store-load.ts).
 * The store never verifies: callers (gossip, anti-entropy, local publish) add only messages the
 * verifier accepted; on load, each record's id is recomputed from its bytes.
 * It emits one typed event per new message (`release`, `command`, …) so the rest of the node never
 * touches raw bytes. Its reads (lookups, membership, anti-entropy sets) are in message-queries.ts.
 */
import { join } from 'node:path'
import { HEALTH_RETENTION_MS, MESSAGES_FILE } from '../constants.ts'
import type { Logger } from '../logger.ts'
import { LogWriter } from './log-writer.ts'
import { reportTime } from './message-index.ts'
import { logLine } from './message-log.ts'
import { MessageQueries } from './message-queries.ts'
import { COMPACT_DEAD_RATIO, COMPACT_MIN_DEAD_BYTES } from './store-constants.ts'
import type { StoreWriteError } from './store-errors.ts'
import { type KeeperInit, StoreKeeper } from './store-keeper.ts'
import { compactNow, loadLog, type StoreHealth, storeHealth } from './store-load.ts'
import type { DropRule } from './store-retention.ts'
import { EVENT_OF_TYPE, type StoredMessage, type VerifiedWire } from './types.ts'

/** Options of the message store. */
export interface MessageStoreInit {
  /** Data directory; omit for a memory-only store (benches). */
  dataDir?: string
  /** No health report older than this (by window end, at most its arrival) is kept. */
  healthRetentionMs?: number
  /** Online compaction runs only past this many dead bytes (default COMPACT_MIN_DEAD_BYTES). */
  compactMinDeadBytes?: number
  /** Retention rules and quotas beyond the defaults (tests, benches). */
  retention?: Omit<KeeperInit, 'retentionMs'>
  /** false: appends are not fsynced (benches measuring what durability costs). Default true. */
  sync?: boolean
}

/** What the store uses. */
export interface MessageStoreComponents {
  logger: Logger
  /** Clock, ms since epoch. */
  now?: () => number
  /** Free bytes on the data directory's filesystem, checked before a compaction (tests inject one). */
  freeBytes?: (dir: string) => Promise<number>
}

/** Verified messages by digest, with indexes and typed events. */
export class MessageStore extends MessageQueries {
  private readonly file: string | undefined
  /** Retention rules and quotas, with what they did (for /status and /metrics). */
  readonly keeper: StoreKeeper
  /** Bytes of the log's records that are no longer held (dropped since the last compaction). */
  private deadBytes = 0
  private compacting: Promise<void> | undefined
  private readonly compactMin: number
  private readonly dropFn = (m: StoredMessage, rule: DropRule): void => this.drop(m, rule)
  private readonly log: Logger
  private readonly freeBytes: ((dir: string) => Promise<number>) | undefined
  private readonly writer: LogWriter | undefined
  /** Appends not yet durable, by id (a second put of one waits for the first). */
  private readonly pending = new Map<string, Promise<boolean>>()
  private loaded = false
  /** Write errors, load findings and disk state (for /status and /metrics). */
  readonly health: StoreHealth = storeHealth()

  constructor(components: MessageStoreComponents, init: MessageStoreInit) {
    super(components.now ?? Date.now, init.healthRetentionMs ?? HEALTH_RETENTION_MS)
    this.file = init.dataDir === undefined ? undefined : join(init.dataDir, MESSAGES_FILE)
    this.compactMin = init.compactMinDeadBytes ?? COMPACT_MIN_DEAD_BYTES
    this.keeper = new StoreKeeper(this.ix, { ...init.retention, retentionMs: this.retention })
    this.log = components.logger
    this.freeBytes = components.freeBytes
    this.writer = this.file === undefined ? undefined : new LogWriter(this.file, { sync: init.sync })
  }

  /**
   * Loads the persisted messages (idempotent), dropping stale health reports and a torn tail;
   * compacts the file only when it must (see store-load.ts).
   */
  async load(): Promise<void> {
    const file = this.file
    const writer = this.writer
    if (this.loaded || file === undefined || writer === undefined) {
      this.loaded = true
      return
    }
    this.loaded = true
    await writer.exclusive(() =>
      loadLog(file, {
        keep: (m) => !this.ix.byDigest.has(m.digest) && !this.tooOld(m, this.now()),
        index: (m) => this.ix.index(m),
        live: () => this.ix.byDigest.values(),
        setEnd: (end) => writer.setEnd(end),
        health: this.health,
        log: this.log,
        free: this.freeBytes,
      }),
    )
    this.deadBytes = this.health.load.compaction === 'done' ? 0 : this.health.load.deadBytes
    const dropped = this.prune()
    this.log.info({ messages: this.ix.byDigest.size, dropped }, 'message store loaded')
    await this.compacting
  }

  /** Waits until every pending append is settled (durable or refused). */
  async flush(): Promise<void> {
    await this.writer?.idle()
  }

  /** Group commits and records written since start (memory-only store: none). */
  writeStats(): { commits: number; lines: number } {
    return { ...(this.writer?.stats ?? { commits: 0, lines: 0 }) }
  }

  /** Whether this id is held, or was dropped by retention (then it is not fetched again). */
  known(digest: string): boolean {
    return this.ix.byDigest.has(digest) || this.keeper.wasDropped(digest)
  }

  /**
   * Stores a verified message. Resolves true once its record is durable (then it is in memory and
   * its events have fired), false when it was already known (or is being stored, or retention
   * would not keep it); rejects with a StoreQuotaError (`ERR_QUOTA`) past its signer's quota, and
   * with a StoreWriteError (`ERR_DISK_FULL`, `ERR_STORE_WRITE`) when it cannot be written: then it
   * is not stored at all.
   */
  put(verified: VerifiedWire, bytes: Uint8Array, receivedAt = this.now()): Promise<boolean> {
    if (this.ix.byDigest.has(verified.digest)) return Promise.resolve(false)
    const pending = this.pending.get(verified.digest)
    if (pending !== undefined) return pending.then(() => false)
    const stored: StoredMessage = { ...verified, bytes, receivedAt }
    try {
      if (!this.keeper.admit(stored, this.now(), this.dropFn)) return Promise.resolve(false)
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.writer === undefined) {
      this.accept(stored)
      return Promise.resolve(true)
    }
    const settle = this.keeper.reserve(stored)
    const p = this.writer.append(logLine(stored)).then(
      () => {
        if (this.health.written()) this.log.info('message store writes again (the disk has room)')
        // a prune or a concurrent load may not have seen it: it is new unless already indexed
        if (this.ix.byDigest.has(stored.digest)) return false
        this.accept(stored)
        return true
      },
      (err: StoreWriteError) => {
        // logged when the error changes, then at most once a minute (every refusal is counted)
        if (this.health.failed(err)) {
          const refused = this.health.writeErrors[err.errno]
          this.log.error({ code: err.code, errno: err.errno, refused }, 'refusing new messages: cannot write them')
        }
        throw err
      },
    )
    this.pending.set(stored.digest, p)
    const done = () => {
      this.pending.delete(stored.digest)
      settle()
    }
    void p.then(done, done)
    return p
  }

  /**
   * Stores a verified message without waiting (`put`, errors logged): true when it was new. It is
   * in memory once durable (at once for a memory-only store).
   */
  add(verified: VerifiedWire, bytes: Uint8Array, receivedAt = this.now()): boolean {
    if (this.ix.byDigest.has(verified.digest) || this.pending.has(verified.digest)) return false
    this.put(verified, bytes, receivedAt).catch(() => {})
    return true
  }

  private accept(stored: StoredMessage): void {
    this.ix.index(stored)
    this.keeper.changed(stored)
    this.emit(EVENT_OF_TYPE[stored.type] as 'message', stored)
    this.emit('message', stored)
  }

  /**
   * Applies the retention rules to everything held (store-retention.ts): returns how many messages
   * it dropped. Once the dropped records outweigh the live ones, the log is compacted (in the
   * background; `flush` waits for it).
   */
  prune(now = this.now()): number {
    const n = this.keeper.sweep(now, this.dropFn)
    this.maybeCompact()
    return n
  }

  private drop(m: StoredMessage, rule: DropRule): void {
    if (!this.ix.byDigest.has(m.digest)) return
    this.ix.unindex(m)
    this.keeper.dropped(m, rule)
    if (this.writer !== undefined) this.deadBytes += Buffer.byteLength(logLine(m))
  }

  /** Compacts the log when the dead records exceed COMPACT_MIN_DEAD_BYTES and COMPACT_DEAD_RATIO of it. */
  private maybeCompact(): void {
    const file = this.file
    const writer = this.writer
    if (file === undefined || writer === undefined || this.compacting !== undefined) return
    const end = writer.size
    if (end === undefined || this.deadBytes < this.compactMin || this.deadBytes <= end * COMPACT_DEAD_RATIO) return
    const dead = this.deadBytes
    this.compacting = writer
      .exclusive(async () => {
        const res = await compactNow(file, this.ix.byDigest.values(), this.log, this.free)
        if (res.done) {
          writer.setEnd(res.size)
          this.deadBytes = Math.max(0, this.deadBytes - dead)
          this.health.compactions++
        }
      })
      .catch((err) => this.log.warn({ err }, 'compacting the message log failed (kept as it is)'))
      .finally(() => {
        this.compacting = undefined
      })
  }

  private get free(): ((dir: string) => Promise<number>) | undefined {
    return this.freeBytes
  }

  /** A health report older than the retention: never kept (not even loaded). */
  private tooOld(m: StoredMessage, now: number): boolean {
    return m.type === 'HealthReport' && reportTime(m) < now - this.retention
  }
}
