/**
 * Loading the message log at start, and the store's disk health.
 *
 * Load reads every record once; a torn tail (bytes after the last `\n`) is truncated away and
 * unreadable records in the middle are counted and skipped. The file is rewritten (compacted) only
 * when it must: records written by an older node need migrating, or dead bytes (stale health
 * reports, duplicates, unreadable lines) exceed COMPACT_DEAD_RATIO of the file. Compaction writes
 * a new file then renames it, after checking the live records fit in the free space with a margin;
 * when they do not (or the write fails) it is skipped with a warning and the old file is kept, so
 * a node starts on a nearly full disk.
 */
import type { Logger } from '../logger.ts'
import { type CompactResult, compactLog, readLog, repairTail } from './message-log.ts'
import { COMPACT_DEAD_RATIO, COMPACT_FREE_MARGIN_BYTES } from './store-constants.ts'
import type { StoreWriteError } from './store-errors.ts'
import type { StoredMessage } from './types.ts'

/** The last refused append. */
export interface StoreWriteFailure {
  code: string
  errno: string
  message: string
  at: number
}

/** The store's disk health: write errors by system code, the last one, and what load found. */
export interface StoreHealth {
  /** Appends refused since start, by system error code (`ENOSPC`, `EIO`, …). */
  writeErrors: Record<string, number>
  /** The last refusal, if any. */
  lastError?: StoreWriteFailure
  /** True from an append refused for a full disk until the next successful append. */
  diskFull: boolean
  /** Compactions done while running (after retention dropped records), since start. */
  compactions: number
  /** What the last load found. */
  load: { records: number; bad: number; tornBytes: number; deadBytes: number; migrate: number; compaction: string }
  /** Records an append made durable; true when it ends a full-disk period. */
  written(): boolean
  /** Records a refused append; true when worth a log line (another error, or a minute since the last line). */
  failed(err: StoreWriteError): boolean
}

/** A refusal with the same code as the last one is logged at most this often. */
const REFUSAL_LOG_INTERVAL_MS = 60_000

/** A fresh health record. */
export function storeHealth(now: () => number = Date.now): StoreHealth {
  let loggedAt = 0
  return {
    writeErrors: {},
    diskFull: false,
    compactions: 0,
    load: { records: 0, bad: 0, tornBytes: 0, deadBytes: 0, migrate: 0, compaction: 'none' },
    written() {
      const was = this.diskFull
      this.diskFull = false
      return was
    },
    failed(err) {
      const t = now()
      this.writeErrors[err.errno] = (this.writeErrors[err.errno] ?? 0) + 1
      const log = this.lastError?.errno !== err.errno || t - loggedAt >= REFUSAL_LOG_INTERVAL_MS
      if (log) loggedAt = t
      this.lastError = { code: err.code, errno: err.errno, message: err.message, at: t }
      if (err.code === 'ERR_DISK_FULL') this.diskFull = true
      return log
    },
  }
}

/** What loading needs from the store. */
export interface LoadTarget {
  /** Whether a read record is kept (not stale, not a duplicate). */
  keep(m: StoredMessage): boolean
  index(m: StoredMessage): void
  /** The live messages after loading (what a compaction writes). */
  live(): Iterable<StoredMessage>
  /** Where the next append goes. */
  setEnd(end: number): void
  health: StoreHealth
  log: Logger
  /** Free bytes on the log's filesystem (tests inject one). */
  free?: (dir: string) => Promise<number>
}

/** Loads `file` into the store, repairing its tail and compacting it when it must. */
export async function loadLog(file: string, t: LoadTarget): Promise<void> {
  const found = await readLog(file)
  if (found.torn > 0) {
    await repairTail(file, found)
    t.log.warn({ bytes: found.torn }, 'dropped a torn last record of the message log')
  }
  let dead = found.badBytes
  let migrate = 0
  for (const r of found.records) {
    if (!t.keep(r.message)) {
      dead += r.bytes
      continue
    }
    if (r.migrate) migrate++
    t.index(r.message)
  }
  if (found.bad > 0) t.log.warn({ bad: found.bad }, 'skipped unreadable lines in the message log')
  t.setEnd(found.end)
  const h = t.health.load
  Object.assign(h, { records: found.records.length, bad: found.bad, tornBytes: found.torn, deadBytes: dead, migrate })
  h.compaction = 'none'
  if (migrate === 0 && dead <= found.end * COMPACT_DEAD_RATIO) return
  const res = await compactNow(file, t.live(), t.log, t.free, { before: found.end, migrate })
  if (res.done) {
    t.setEnd(res.size)
    h.compaction = 'done'
    return
  }
  h.compaction = `skipped: ${res.reason}`
}

/**
 * Compacts the log to these messages (message-log.ts `compactLog`, with the free-space margin) and
 * logs what happened: a skipped compaction keeps the old file and is a warning, never an error.
 */
export async function compactNow(
  file: string,
  live: Iterable<StoredMessage>,
  log: Logger,
  free?: (dir: string) => Promise<number>,
  context: Record<string, number> = {},
): Promise<CompactResult> {
  const res = await compactLog(file, live, COMPACT_FREE_MARGIN_BYTES, free)
  if (res.done) {
    log.info({ ...context, after: res.size }, 'compacted the message log')
    return res
  }
  log.warn(
    { reason: res.reason, need: res.need, free: res.free, err: res.error },
    res.reason === 'no-space'
      ? 'not compacting the message log: not enough free space (kept as it is)'
      : 'not compacting the message log: the new file could not be written (kept as it is)',
  )
  return res
}
