/**
 * How the CLI talks HTTP to a daemon (used by the typed client, cli/api-client.ts): the base URL,
 * one request with a timeout and a bounded answer, and the failures typed by class — no answer:
 * UnreachableError naming the cause; an error answer: RefusedError with the daemon's
 * `{ error: { code, message } }` (node/api/errors.ts).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ErrorBody } from '../node/api/errors.ts'
import { envValue } from '../node/config/options.ts'
import { DEFAULT_API, NODE_INFO_FILE } from '../node/constants.ts'
import { CliError, oneLine, RefusedError, UnreachableError, UsageError } from './output.ts'

/** Default timeout of one API call, ms (an upload has none); `LLMESH_API_TIMEOUT` overrides it. */
export const DEFAULT_TIMEOUT_MS = 15_000
/** Largest JSON answer the CLI reads, bytes (a fleet's status is far below). */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024
/** Largest signed bundle read from `GET /releases/:model/:version/bundle`, bytes. */
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024

/** Where the daemon is: `--api`, else `--data`'s node.json, else the default address. */
export interface ApiTarget {
  api?: string
  data?: string
}

/** One request, as the client sends it. */
export interface Call {
  method?: 'GET' | 'POST'
  body?: RequestInit['body']
  headers?: Record<string, string>
  /** A missing route (ERR_NO_ROUTE, or a bare 404 of an older node) gives `undefined`. */
  missingOk?: boolean
  /** ERR_NOT_FOUND gives `undefined`. */
  notFoundOk?: boolean
  timeoutMs?: number | null
  maxBytes?: number
}

/** Base URL of the node the command talks to. */
export async function nodeUrl(opts: ApiTarget): Promise<string> {
  if (opts.api !== undefined) return withScheme(opts.api)
  if (opts.data !== undefined) {
    let api: unknown
    try {
      api = (JSON.parse(await readFile(join(opts.data, NODE_INFO_FILE), 'utf8')) as { api?: unknown }).api
    } catch {
      throw new UnreachableError(
        `no running node found in ${opts.data} (no ${NODE_INFO_FILE}): is the node running? see llmesh node start`,
        'ERR_NOT_RUNNING',
      )
    }
    if (typeof api !== 'string' || api === '') throw new CliError(`${NODE_INFO_FILE} names no API`, 'ERR_SCHEMA')
    return withScheme(api)
  }
  return `http://${DEFAULT_API}`
}

export function withScheme(api: string): string {
  return (api.includes('://') ? api : `http://${api}`).replace(/\/$/, '')
}

/**
 * The error for an API error answer: the API's `{ error: { code, message } }`, so `--json`
 * callers and the one-line stderr error keep the daemon's stable `ERR_*` code. An answer without
 * one (a proxy, an older node's `{ error: code, message }`) still gives its code or `ERR_API`.
 */
export function apiError(status: number, body: unknown): RefusedError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { error?: unknown; message?: unknown }
  const e = (typeof b.error === 'object' && b.error !== null ? b.error : {}) as Partial<ErrorBody['error']>
  const code = [e.code, b.error].find((c): c is string => typeof c === 'string' && /^ERR_[A-Z0-9_]+$/.test(c))
  const message = [e.message, b.message].find((m): m is string => typeof m === 'string' && m !== '')
  return new RefusedError(oneLine(message ?? `HTTP ${status}`).slice(0, 2048), code ?? 'ERR_API', status)
}

/** Why a fetch got no answer, in words an operator can act on. */
export function unreachable(url: string, err: unknown): UnreachableError {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } }
  if (e?.name === 'TimeoutError') return new UnreachableError(`${url}: no answer in time`, 'ERR_TIMEOUT')
  const cause = e?.cause
  const where = new URL(url).host
  if (cause?.code === 'ECONNREFUSED') {
    const addr = /ECONNREFUSED (\S+)/.exec(cause.message ?? '')?.[1] ?? where
    return new UnreachableError(`ECONNREFUSED ${addr}: is the node running? see llmesh node start`)
  }
  if (cause?.code !== undefined) return new UnreachableError(`${cause.code} ${where}: ${cause.message ?? 'no answer'}`)
  return new UnreachableError(`cannot reach ${url}: ${cause?.message ?? e?.message ?? String(err)}`)
}

/** Reads at most `max` bytes of a body (a hostile or broken daemon cannot fill the CLI's memory). */
async function readCapped(res: Response, max: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > max) throw tooLarge(max)
  const chunks: Uint8Array[] = []
  let size = 0
  if (res.body === null) return new Uint8Array()
  for await (const chunk of res.body) {
    size += chunk.byteLength
    if (size > max) throw tooLarge(max)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

function tooLarge(max: number): CliError {
  return new CliError(`the daemon's answer is larger than ${max} bytes`, 'ERR_OVERSIZED')
}

export function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    return undefined
  }
}

/** Sends one request; returns the raw answer bytes of a 2xx, `undefined` for an allowed miss. */
export async function send(url: string, call: Call, token: string | undefined): Promise<Uint8Array | undefined> {
  const headers = new Headers(call.headers)
  if (token !== undefined && token !== '' && !headers.has('authorization'))
    headers.set('authorization', `Bearer ${token}`)
  const timeoutMs = call.timeoutMs === undefined ? await envTimeoutMs() : call.timeoutMs
  let res: Response
  try {
    res = await fetch(url, {
      method: call.method ?? 'GET',
      headers,
      body: call.body,
      ...(call.body instanceof ReadableStream ? { duplex: 'half' } : {}),
      ...(timeoutMs === null ? {} : { signal: AbortSignal.timeout(timeoutMs) }),
    } as RequestInit)
  } catch (err) {
    throw unreachable(url, err)
  }
  const bytes = await readCapped(res, call.maxBytes ?? MAX_RESPONSE_BYTES)
  if (res.ok) return bytes
  const err = apiError(res.status, parseJson(bytes))
  const noRoute = err.code === 'ERR_NO_ROUTE' || (res.status === 404 && err.code === 'ERR_API')
  if (noRoute && call.missingOk === true) return undefined
  if (err.code === 'ERR_NOT_FOUND' && call.notFoundOk === true) return undefined
  throw err
}

/**
 * The timeout of one API call: `LLMESH_API_TIMEOUT` (a duration, node/config/options.ts) when set,
 * else `DEFAULT_TIMEOUT_MS`. A malformed value is refused, not ignored. The duration parser is
 * loaded only when the variable is set (`--version` and `status` load no protocol module).
 */
export async function envTimeoutMs(env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  const v = envValue('api_timeout', env)
  if (v === undefined) return DEFAULT_TIMEOUT_MS
  const { parseDuration } = await import('../protocols/duration.ts')
  let ms: number
  try {
    ms = parseDuration(v)
  } catch {
    ms = Number.NaN
  }
  if (!(ms > 0)) throw new UsageError(`LLMESH_API_TIMEOUT=${v}: not a positive duration (e.g. 30s)`)
  return ms
}

/** The API token of the operator's environment (`LLMESH_API_TOKEN`, node/config/options.ts). */
export function envToken(): string | undefined {
  return envValue('api_token')
}

/** A URL path segment. */
export const seg = encodeURIComponent

/** What a device answers to a seed-only route, in words that say where to go. */
const SEED_ONLY: Record<'releases' | 'devices', string> = {
  releases: 'this is a device; releases are published on the seed (--api <seed>)',
  devices: 'this is a device; devices are managed on the seed (--api <seed>), or sign locally with --fleet <dir>',
}

/** Runs a call to a seed-only route; a node without it (ERR_NO_ROUTE) says so. */
export async function seedOnly<T>(what: keyof typeof SEED_ONLY, call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    if (err instanceof RefusedError && err.code === 'ERR_NO_ROUTE')
      throw new RefusedError(SEED_ONLY[what], err.code, err.status)
    throw err
  }
}

/** Adds the options of a command that talks to any node's API: --api, --data, --json. */
export function nodeApiOptions<C extends { option(flags: string, description: string): C }>(c: C): C {
  return c
    .option('--api <url>', `API of a node (default http://${DEFAULT_API})`)
    .option('--data <dir>', "read the node's API address from <dir>/node.json")
    .option('--json', 'print JSON')
}
