/**
 * The `pretty` log format: pino's JSON lines turned into one readable line each for a person at
 * a terminal (`--log-format pretty`, the default when stderr is a TTY), without pino-pretty:
 *
 *   12:04:05.123 WARN  node/history: history: could not be saved  err=EACCES path=/var/lib/…
 *
 * time (UTC, ms), level, role/svc, the message, then the other fields as key=value (objects as
 * JSON); an error's stack follows, indented. Values may come from the network (peer ids, names,
 * reasons): control characters print as `?`, so a log line stays one line and cannot drive the
 * terminal. Written synchronously to fd 2, as the JSON format is.
 */
import { writeSync } from 'node:fs'

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }
/** Fields shown in the line's head, or not at all (they are on every line). */
const HEAD = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'role', 'svc', 'err', 'v'])
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g

const clean = (s: string): string => s.replace(CONTROL, '?')

function value(v: unknown): string {
  if (typeof v === 'string') return clean(v)
  return clean(JSON.stringify(v) ?? String(v))
}

/** One pino JSON line as one readable line (plus an error's stack); a line that is not JSON as it is. */
export function prettyLine(json: string): string {
  let o: Record<string, unknown>
  try {
    o = JSON.parse(json) as Record<string, unknown>
  } catch {
    return `${clean(json.replace(/\n$/, ''))}\n`
  }
  if (typeof o !== 'object' || o === null) return `${clean(json.replace(/\n$/, ''))}\n`
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '--:--:--.---'
  const level = (LEVELS[o.level as number] ?? String(o.level)).padEnd(5)
  const who = [o.role, o.svc].filter((x) => typeof x === 'string' && x !== '').map(String)
  const fields = Object.entries(o)
    .filter(([k]) => !HEAD.has(k))
    .map(([k, v]) => `${clean(k)}=${value(v)}`)
  const err = o.err as { message?: unknown; stack?: unknown; code?: unknown } | string | undefined
  if (typeof err === 'string') fields.unshift(`err=${clean(err)}`)
  else if (err && typeof err === 'object' && typeof err.stack !== 'string')
    fields.unshift(`err=${value(err.message ?? err)}`)
  let line = `${time} ${level} ${clean(who.join('/') || String(o.name ?? 'llmesh'))}: ${value(o.msg ?? '')}`
  if (fields.length > 0) line += `  ${fields.join(' ')}`
  if (err && typeof err === 'object' && typeof err.stack === 'string')
    line += `\n${err.stack
      .split('\n')
      .map((l) => `    ${clean(l)}`)
      .join('\n')}`
  return `${line}\n`
}

/** A pino destination writing pretty lines to stderr synchronously (nothing lost on exit). */
export function prettyDestination(fd = 2): { write(chunk: string): void } {
  return {
    write(chunk: string) {
      for (const l of chunk.split('\n')) if (l !== '') writeSync(fd, prettyLine(l))
    },
  }
}
