/**
 * The message store's file, `<data>/messages.jsonl`: one JSON line per stored message (its id,
 * arrival time, signer, decoded message and wire bytes in base64), every record ending with `\n`.
 * Reading recomputes each record's id from its bytes (records written before ids named messages
 * carry a wire hash) and rewrites operator envelopes an older node accepted into their one
 * accepted form; such records are counted as needing migration.
 *
 * Crash safety (see docs/protocol.md, "Message store durability"):
 * - bytes after the last `\n` are a torn record (a write cut by a crash or a full disk, never
 *   acknowledged): `repairTail` truncates them away so the next append starts on a fresh line;
 *   records before it are never touched;
 * - a record in the middle that does not parse is counted (`bad`) and skipped, never fatal;
 * - `compactLog` writes the live records to a new file, fsyncs it, renames it over the log and
 *   fsyncs the directory, after checking with statfs that the new file fits; it never needs the
 *   whole log's size free, and refuses (keeping the old file) when even the live records do not fit.
 */
import { open, readFile, rename, rm, statfs, truncate } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fromBase64, toBase64 } from '../../protocols/encoding.ts'
import { wireMessageId } from '../../protocols/signing/message-id.ts'
import { normalizeOperatorWire } from '../../protocols/signing/normalize.ts'
import type { AnyMessage, StoredMessage } from './types.ts'

interface DiskLine {
  d: string
  t: number
  s: string
  m: AnyMessage
  w: string
}

/** One readable record of the log. */
export interface LogRecord {
  message: StoredMessage
  /** Its line's size in bytes, `\n` included. */
  bytes: number
  /** Written by an older node (another id or another encoding): rewritten by the next compaction. */
  migrate: boolean
}

/** What reading the log found. */
export interface LogContents {
  records: LogRecord[]
  /** Complete lines that do not parse (skipped). */
  bad: number
  /** Bytes of those lines. */
  badBytes: number
  /** End of the last complete line: where the next append goes. */
  end: number
  /** Bytes after the last complete line (a torn record; 0 when none). */
  torn: number
}

const NL = 0x0a

/** Reads every readable record of the log (none when the file does not exist). */
export async function readLog(file: string): Promise<LogContents> {
  let buf: Buffer
  try {
    buf = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    buf = Buffer.alloc(0)
  }
  const end = buf.lastIndexOf(NL) + 1
  const out: LogContents = { records: [], bad: 0, badBytes: 0, end, torn: buf.length - end }
  let start = 0
  while (start < end) {
    const nl = buf.indexOf(NL, start)
    const line = buf.subarray(start, nl)
    const size = nl + 1 - start
    start = nl + 1
    if (line.toString('latin1').trim() === '') {
      out.badBytes += size
      continue
    }
    const record = parseLine(line.toString('utf8'), size)
    if (record === undefined) {
      out.bad++
      out.badBytes += size
    } else out.records.push(record)
  }
  return out
}

function parseLine(line: string, size: number): LogRecord | undefined {
  try {
    const l = JSON.parse(line) as DiskLine
    const raw = fromBase64(l.w)
    const bytes = normalizeOperatorWire(raw)
    const id = wireMessageId(bytes)
    if (id === undefined) return undefined
    const migrate = id !== l.d || !Buffer.from(bytes).equals(Buffer.from(raw))
    const message: StoredMessage = { digest: id, type: l.m.type, message: l.m, signer: l.s, bytes, receivedAt: l.t }
    return { message, bytes: size, migrate }
  } catch {
    return undefined
  }
}

/** The log line of a stored message. */
export function logLine(m: StoredMessage): string {
  const l: DiskLine = { d: m.digest, t: m.receivedAt, s: m.signer, m: m.message, w: toBase64(m.bytes) }
  return `${JSON.stringify(l)}\n`
}

/**
 * Truncates a torn last record away (bytes after the last `\n`) and returns the log's size after
 * it: where the next append starts. 0 when the file does not exist.
 */
export async function repairTail(file: string, known?: Pick<LogContents, 'end' | 'torn'>): Promise<number> {
  const found = known ?? (await scanTail(file))
  if (found.torn > 0) await truncate(file, found.end)
  return found.end
}

/** Finds the end of the last complete line by reading the file backwards in blocks. */
async function scanTail(file: string): Promise<{ end: number; torn: number }> {
  let fh: Awaited<ReturnType<typeof open>>
  try {
    fh = await open(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { end: 0, torn: 0 }
    throw err
  }
  try {
    const size = (await fh.stat()).size
    const block = Buffer.alloc(64 * 1024)
    for (let pos = size; pos > 0; ) {
      const from = Math.max(0, pos - block.length)
      const { bytesRead } = await fh.read(block, 0, pos - from, from)
      const i = block.subarray(0, bytesRead).lastIndexOf(NL)
      if (i >= 0) return { end: from + i + 1, torn: size - (from + i + 1) }
      pos = from
    }
    return { end: 0, torn: size }
  } finally {
    await fh.close()
  }
}

/** Outcome of a compaction. */
export type CompactResult =
  | { done: true; size: number }
  | { done: false; reason: 'no-space' | 'write-failed'; need: number; free?: number; error?: unknown }

/**
 * Replaces the log with these messages: a new file, fsynced, renamed over the log, directory
 * fsynced. Checks first that the new file plus `marginBytes` fits in the free space; when not (or
 * when the write fails), removes the new file and keeps the old log untouched.
 */
export async function compactLog(
  file: string,
  messages: Iterable<StoredMessage>,
  marginBytes: number,
  free: (dir: string) => Promise<number> = freeBytes,
): Promise<CompactResult> {
  const text = Buffer.from([...messages].map(logLine).join(''))
  const need = text.length + marginBytes
  const avail = await free(dirname(file))
  if (avail < need) return { done: false, reason: 'no-space', need, free: avail }
  const tmp = `${file}.tmp`
  try {
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(text)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
  } catch (error) {
    await rm(tmp, { force: true }).catch(() => {})
    return { done: false, reason: 'write-failed', need, error }
  }
  await syncDir(dirname(file))
  return { done: true, size: text.length }
}

/** Bytes free for this process on the filesystem of `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir)
  return s.bavail * s.bsize
}

/** fsyncs a directory (a created or renamed entry survives a crash). */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
