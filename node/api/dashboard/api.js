/**
 * The node's JSON API as the page calls it: same origin, the API token (if the operator typed one)
 * as a bearer header, never cookies. The token lives in this tab's sessionStorage only.
 */

const TOKEN_KEY = 'llmesh.apiToken'

/** @returns {string} */
export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? ''
  } catch {
    return ''
  }
}

/** @param {string} token empty: forget it */
export function setToken(token) {
  try {
    if (token === '') sessionStorage.removeItem(TOKEN_KEY)
    else sessionStorage.setItem(TOKEN_KEY, token)
  } catch {
    // storage disabled: the token lasts until the page is closed
  }
}

/**
 * @typedef {{ ok: boolean, status: number, data: any, error?: string }} ApiResult
 * `status` 0 and `error` set: the node could not be reached.
 */

/**
 * Calls the API. Never throws.
 * @param {string} path absolute path, e.g. `/status`
 * @param {{ method?: string, body?: unknown }} [opts]
 * @returns {Promise<ApiResult>}
 */
export async function api(path, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' }
  const token = getToken()
  if (token !== '') headers.authorization = `Bearer ${token}`
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  try {
    const res = await fetch(path, {
      method: opts.method ?? 'GET',
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      cache: 'no-store',
      credentials: 'omit',
      signal: AbortSignal.timeout(15000),
    })
    let data = null
    try {
      data = await res.json()
    } catch {
      data = null
    }
    return { ok: res.ok, status: res.status, data }
  } catch (err) {
    return { ok: false, status: 0, data: null, error: err instanceof Error ? err.message : String(err) }
  }
}

/**
 * One line saying why a call failed: the API's `{ error: { code, message } }` (node/api/errors.ts).
 * @param {ApiResult} r
 */
export function errorText(r) {
  if (r.status === 0) return `cannot reach the node: ${r.error ?? 'network error'}`
  const e = r.data?.error
  const code = typeof e?.code === 'string' ? e.code : ''
  const message = typeof e?.message === 'string' ? e.message : ''
  return `HTTP ${r.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`
}
