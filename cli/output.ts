/**
 * Output helpers shared by every command: data to stdout (JSON with --json, text otherwise),
 * errors to stderr as one line with an exit code that names the error's class. Under `--json`
 * an error is also printed on stdout as `{ "error": { "code", "message", "class" } }` (the
 * daemon's error body, node/api/errors.ts, plus the class) when the command printed no data.
 *
 * Exit codes (README "Exit codes"): 0 success · 1 failed (the command ran and something was
 * wrong: a bad file, a failed verification, a local error) · 2 usage (the command line is wrong) ·
 * 3 unreachable (no daemon answered) · 4 refused (a daemon answered with an error).
 */
import type { DownloadStatus } from '../node/install/progress.ts'
import { jsonDocument } from './json-output.ts'

/** Options every data-printing command accepts. */
export interface OutputOptions {
  json?: boolean
}

/** The class of a CLI failure; each has its own exit code. */
export type ErrorClass = 'failed' | 'usage' | 'unreachable' | 'refused'

/** Exit code of each error class. Stable: scripts match on them. */
export const EXIT_CODES: Readonly<Record<ErrorClass, number>> = { failed: 1, usage: 2, unreachable: 3, refused: 4 }

/** Whether a command printed its data: under `--json` stdout then holds that one document, not an error body too. */
let printedData = false

/**
 * Prints `data` through `human` as text, or with --json as one JSON document shaped at the one
 * boundary, cli/json-output.ts: snake_case keys at every depth, an object envelope.
 */
export function print<T extends object>(opts: OutputOptions, data: T, human: (data: T) => string): void {
  if (opts.json === true) {
    const doc = jsonDocument(data)
    printedData = true
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`)
  } else {
    printedData = true
    process.stdout.write(`${human(data)}\n`)
  }
}

/** A failure the CLI reports as one line on stderr; `errorClass` picks the exit code. */
export class CliError extends Error {
  readonly exitCode: number
  readonly code: string
  readonly errorClass: ErrorClass
  constructor(message: string, code = 'ERR_CLI', errorClass: ErrorClass = 'failed') {
    super(message)
    this.name = 'CliError'
    this.code = code
    this.errorClass = errorClass
    this.exitCode = EXIT_CODES[errorClass]
  }
}

/** The command line is wrong (exit 2). */
export class UsageError extends CliError {
  constructor(message: string, code = 'ERR_USAGE') {
    super(message, code, 'usage')
    this.name = 'UsageError'
  }
}

/** No daemon answered: refused connection, timeout, no `node.json` (exit 3). */
export class UnreachableError extends CliError {
  constructor(message: string, code = 'ERR_UNREACHABLE') {
    super(message, code, 'unreachable')
    this.name = 'UnreachableError'
  }
}

/** A daemon answered with an error body; `code` is the daemon's `ERR_*` code, `status` its HTTP status (exit 4). */
export class RefusedError extends CliError {
  readonly status: number
  constructor(message: string, code: string, status: number) {
    super(message, code, 'refused')
    this.name = 'RefusedError'
    this.status = status
  }
}

/** The JSON error body printed on stdout under `--json`. */
export interface CliErrorBody {
  error: { code: string; message: string; class: ErrorClass }
}

/** One zod-style issue. */
interface Issue {
  path: PropertyKey[]
  message: string
}

function isIssues(v: unknown): v is Issue[] {
  return Array.isArray(v) && v.length > 0 && v.every((i) => typeof i?.message === 'string' && Array.isArray(i?.path))
}

function issueLine(issues: Issue[]): string {
  const i = issues[0]
  const field = i.path.map(String).join('.') || '(root)'
  return `${field}: ${i.message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`
}

/**
 * A message on one line: a zod error's issues (an `issues` array, or their JSON inside the
 * message, as zod prints them) become `field: reason`; otherwise the first line.
 */
export function oneLine(message: string, issues?: unknown): string {
  if (isIssues(issues)) {
    const at = message.indexOf('[')
    const prefix = at > 0 ? message.slice(0, at) : ''
    return `${prefix}${issueLine(issues)}`
  }
  const at = message.indexOf('[')
  if (at >= 0 && message.includes('\n')) {
    try {
      const parsed: unknown = JSON.parse(message.slice(at))
      if (isIssues(parsed)) return `${message.slice(0, at)}${issueLine(parsed)}`
    } catch {
      // not zod's JSON: the first line
    }
  }
  return message.split('\n')[0]
}

/** Class, code and one-line message of any thrown value. */
export function describeError(err: unknown): CliErrorBody['error'] {
  const e = err as { message?: unknown; code?: unknown; errorClass?: unknown; issues?: unknown } | null
  const message = oneLine(typeof e?.message === 'string' ? e.message : String(err), e?.issues)
  const code = typeof e?.code === 'string' ? e.code : 'ERR_CLI'
  const cls = err instanceof CliError ? err.errorClass : 'failed'
  return { code, message, class: cls }
}

/**
 * Reports an error on stderr as a single line and sets the exit code; with `json`, also as the JSON
 * error body on stdout unless the command already printed its data there (e.g. `model inspect`'s
 * report of a file that fails): stdout under `--json` is always one JSON document.
 */
export function fail(err: unknown, json = false): void {
  const d = describeError(err)
  process.stderr.write(`llmesh: error: ${d.message} [${d.code}]\n`)
  if (json && !printedData) process.stdout.write(`${JSON.stringify({ error: d } satisfies CliErrorBody)}\n`)
  process.exitCode = EXIT_CODES[d.class]
}

/** Whether the running command asked for JSON (commander passes the Command last to an action). */
function wantsJson(args: unknown[]): boolean {
  const cmd = args[args.length - 1] as { optsWithGlobals?: () => { json?: unknown } } | undefined
  return typeof cmd?.optsWithGlobals === 'function' && cmd.optsWithGlobals().json === true
}

/** Wraps a command action so that any error ends as one stderr line and its class's exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    printedData = false
    try {
      await fn(...args)
    } catch (err) {
      fail(err, wantsJson(args))
    }
  }
}

/** Bytes as MiB. */
export function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`
}

/** One line for `llmesh status`: version, bytes, percent, rate, ETA, source peers, stall. */
export function formatDownload(d: DownloadStatus): string {
  const mib = (n: number) => (n / 1048576).toFixed(1)
  const pct = d.bytes_total === 0 ? 100 : Math.floor((d.bytes_have * 100) / d.bytes_total)
  const eta = d.eta_s === null ? '-' : `${d.eta_s}s`
  const peers = d.peers.map((p) => (p.peer.length > 12 ? `…${p.peer.slice(-8)}` : p.peer)).join(',') || '-'
  return (
    `downloading ${d.version}: ${mib(d.bytes_have)}/${mib(d.bytes_total)} MiB (${pct}%), ${mib(d.rate_bps)} MiB/s, ` +
    `ETA ${eta}, from ${d.peers.length} peer(s) ${peers}${d.stalled ? '  STALLED' : ''}`
  )
}
