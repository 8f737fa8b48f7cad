/**
 * The message store's file, `<data>/messages.jsonl`: one JSON line per stored message (its id,
 * arrival time, signer, decoded message and wire bytes in base64). Reading recomputes each
 * record's id from its bytes (records written before ids named messages carry a wire hash) and
 * rewrites operator envelopes an older node accepted into their one accepted form.
 */
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
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

/** Reads every readable record of the log (none when the file does not exist). */
export async function readLog(file: string): Promise<{ records: StoredMessage[]; bad: number }> {
  let text = ''
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const records: StoredMessage[] = []
  let bad = 0
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    try {
      const l = JSON.parse(line) as DiskLine
      const bytes = normalizeOperatorWire(fromBase64(l.w))
      const id = wireMessageId(bytes)
      if (id === undefined) throw new Error('undecodable record')
      records.push({ digest: id, type: l.m.type, message: l.m, signer: l.s, bytes, receivedAt: l.t })
    } catch {
      bad++
    }
  }
  return { records, bad }
}

/** The log line of a stored message. */
export function logLine(m: StoredMessage): string {
  const l: DiskLine = { d: m.digest, t: m.receivedAt, s: m.signer, m: m.message, w: toBase64(m.bytes) }
  return `${JSON.stringify(l)}\n`
}

/** Appends lines to the log. */
export function appendLog(file: string, text: string): Promise<void> {
  return appendFile(file, text, { mode: 0o600 })
}

/** Replaces the log with these messages (write to a temporary file, then rename). */
export async function rewriteLog(file: string, messages: Iterable<StoredMessage>): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true })
  const tmp = `${file}.tmp`
  await writeFile(tmp, [...messages].map(logLine).join(''), { mode: 0o600 })
  await rename(tmp, file)
}
