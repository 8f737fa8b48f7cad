/**
 * Durable appends to the message log, with group commit.
 *
 * How it works: `append(line)` queues the line and resolves only once it is on disk. One commit
 * at a time takes every queued line (up to GROUP_COMMIT_MAX_RECORDS), writes them with one
 * positional write at the log's known end, and fdatasyncs; every line of the batch is then
 * acknowledged. Lines queued while a commit runs go into the next one, so concurrent appends
 * share one fsync. The end is known from the first commit on (after truncating a torn tail away),
 * and is advanced only by a successful commit: when a write or the sync fails (ENOSPC, EIO), the
 * file is truncated back to the end and every line of the batch is refused with a
 * StoreWriteError; the next commit writes at the same end anyway, so a failed batch never glues
 * its fragment to the next record. `exclusive(fn)` runs fn between commits (load, compaction).
 */
import { constants, mkdir, open } from 'node:fs/promises'
import { dirname } from 'node:path'
import { repairTail, syncDir } from './message-log.ts'
import { GROUP_COMMIT_MAX_RECORDS } from './store-constants.ts'
import { StoreWriteError } from './store-errors.ts'

interface Pending {
  text: string
  resolve: () => void
  reject: (err: StoreWriteError) => void
}

/** Options of the writer. */
export interface LogWriterInit {
  /** Most lines per commit. */
  maxBatch?: number
  /** false: no fsync (benches only: measures what durability costs). Default true. */
  sync?: boolean
}

/** Appends lines to one file durably, batching concurrent appends. */
export class LogWriter {
  private queue: Pending[] = []
  private chain: Promise<void> = Promise.resolve()
  private scheduled = false
  private end: number | undefined
  private readonly maxBatch: number
  private readonly sync: boolean
  /** Commits and lines written, for benches and /status. */
  readonly stats = { commits: 0, lines: 0 }

  private readonly file: string

  constructor(file: string, init: LogWriterInit = {}) {
    this.file = file
    this.maxBatch = init.maxBatch ?? GROUP_COMMIT_MAX_RECORDS
    this.sync = init.sync ?? true
  }

  /** The log's size as this writer knows it (undefined before the first load or commit). */
  get size(): number | undefined {
    return this.end
  }

  /** Sets where the next append goes (after load repaired or compacted the file). */
  setEnd(end: number): void {
    this.end = end
  }

  /** Resolves once `text` (one or more complete lines) is durably in the log; rejects with StoreWriteError. */
  append(text: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ text, resolve, reject })
      this.schedule()
    })
  }

  /** Runs `fn` with no commit in progress (queued appends wait for it). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn)
    this.chain = run.then(
      () => {},
      () => {},
    )
    return run
  }

  /** Resolves once every append queued so far is settled. */
  async idle(): Promise<void> {
    while (this.queue.length > 0 || this.scheduled) await this.chain
    await this.chain
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    this.chain = this.chain.then(() => this.commit())
  }

  private async commit(): Promise<void> {
    this.scheduled = false
    const batch = this.queue.splice(0, this.maxBatch)
    if (this.queue.length > 0) this.schedule()
    if (batch.length === 0) return
    const data = Buffer.from(batch.map((p) => p.text).join(''))
    try {
      await this.write(data)
    } catch (err) {
      const e = StoreWriteError.from(err)
      for (const p of batch) p.reject(e)
      return
    }
    this.stats.commits++
    this.stats.lines += batch.length
    for (const p of batch) p.resolve()
  }

  private async write(data: Buffer): Promise<void> {
    const created = this.end === undefined
    if (this.end === undefined) {
      await mkdir(dirname(this.file), { recursive: true })
      this.end = await repairTail(this.file)
    }
    const start = this.end
    const fh = await open(this.file, constants.O_RDWR | constants.O_CREAT, 0o600)
    try {
      let off = 0
      while (off < data.length) {
        const { bytesWritten } = await fh.write(data, off, data.length - off, start + off)
        off += bytesWritten
      }
      if (this.sync) await fh.datasync()
      this.end = start + data.length
    } catch (err) {
      // nothing of this batch is acknowledged: cut it off again (the next commit writes at `start` anyway)
      await fh.truncate(start).catch(() => {})
      throw err
    } finally {
      await fh.close()
    }
    if (created && start === 0 && this.sync) await syncDir(dirname(this.file))
  }
}
