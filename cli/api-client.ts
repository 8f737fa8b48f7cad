/**
 * How CLI commands reach a daemon's API: the base URL (`--api`, else `<data>/node.json`, else the
 * default loopback address) and one JSON call with a timeout and the API's `ERR_*` codes mapped
 * to CliError.
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
 * Calls the API and returns its JSON body. Throws CliError: `ERR_UNREACHABLE`, the API's own
 * `ERR_*` code, or `ERR_API`. With `missingOk`, a plain 404 (route absent on that node) gives `undefined`.
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
  const body = (await res.json().catch(() => ({}))) as { error?: unknown; message?: string }
  const code = typeof body.error === 'string' && body.error.startsWith('ERR_') ? body.error : undefined
  if (res.status === 404 && code === undefined && opts.missingOk === true) return undefined
  if (!res.ok) throw new CliError(body.message ?? `HTTP ${res.status}`, code ?? 'ERR_API')
  return body
}
