/**
 * How CLI commands reach a daemon's API: the base URL (`--api`, else `<data>/node.json`, else the
 * default loopback address) and one JSON call with a timeout and the API's `ERR_*` codes mapped
 * to CliError (`apiError`, also used by `release publish`'s streaming upload).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DEFAULT_API, NODE_INFO_FILE } from '../node/constants.ts'
import { CliError } from './output.ts'

/** Base URL of the node the command talks to. */
export async function nodeUrl(opts: { api?: string; data?: string }): Promise<string> {
  if (opts.api !== undefined) return (opts.api.includes('://') ? opts.api : `http://${opts.api}`).replace(/\/$/, '')
  if (opts.data !== undefined) {
    try {
      return (JSON.parse(await readFile(join(opts.data, NODE_INFO_FILE), 'utf8')) as { api: string }).api
    } catch {
      throw new CliError(`no running node found in ${opts.data} (no ${NODE_INFO_FILE})`, 'ERR_NOT_RUNNING')
    }
  }
  return `http://${DEFAULT_API}`
}

/**
 * The CliError for an API error answer: the API's `{ error: { code, message } }` (node/api/errors.ts),
 * so `--json` callers and the one-line stderr error keep the daemon's stable `ERR_*` code. An answer
 * without one (a proxy, an older node's `{ error: code, message }`) still gives its code or `ERR_API`.
 */
export function apiError(status: number, body: unknown): CliError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { error?: unknown; message?: unknown }
  const e = (typeof b.error === 'object' && b.error !== null ? b.error : {}) as { code?: unknown; message?: unknown }
  const code = [e.code, b.error].find((c): c is string => typeof c === 'string' && /^ERR_[A-Z0-9_]+$/.test(c))
  const message = [e.message, b.message].find((m): m is string => typeof m === 'string' && m !== '')
  return new CliError(message ?? `HTTP ${status}`, code ?? 'ERR_API')
}

/**
 * Calls the API and returns its JSON body. Throws CliError: `ERR_UNREACHABLE`, the API's own
 * `ERR_*` code, or `ERR_API`. With `missingOk`, a missing route (`ERR_NO_ROUTE`, or a plain 404
 * from an older node) gives `undefined`.
 */
export async function callApi(
  url: string,
  init?: RequestInit,
  opts: { missingOk?: boolean; timeoutMs?: number } = {},
): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000) })
  } catch (err) {
    throw new CliError(`cannot reach ${url}: ${(err as Error).message}`, 'ERR_UNREACHABLE')
  }
  const body: unknown = await res.json().catch(() => ({}))
  if (res.ok) return body
  const err = apiError(res.status, body)
  const noRoute = err.code === 'ERR_NO_ROUTE' || (res.status === 404 && err.code === 'ERR_API')
  if (noRoute && opts.missingOk === true) return undefined
  throw err
}
