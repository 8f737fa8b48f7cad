/**
 * Who may call the node API (the API token module). One `onRequest` hook, in this order:
 *
 *   1. PUBLIC_ROUTE (the dashboard's page and static files, GET only, no data): always served.
 *   2. A mutating request (POST/PUT/PATCH/DELETE) that carries an `Origin` must come from the API's
 *      own origin (`http://` + the Host it was sent to): a page of another origin cannot post
 *      commands. No `Origin` (the CLI, curl) is fine.
 *   3. The `Host` must be an IP literal, `localhost` or one of this node's own `.local` names,
 *      unless the request carries the token: against DNS rebinding (a page resolving its own name,
 *      or a `.local` name a LAN neighbour answers in mDNS, to this machine). → 403 ERR_HOST_NOT_ALLOWED
 *   4. With a token configured, a caller needs it unless it is on loopback (and passed 3). → 401 ERR_UNAUTHORIZED
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sendError } from './errors.ts'

/** Loopback peer addresses (IPv4, IPv6, IPv4-mapped). */
export const LOOPBACK_ADDRESS = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/

/** Methods that change something: they get the Origin check. */
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Options of the hook. */
export interface ApiAccessInit {
  /** Bearer token required from callers not on loopback. Unset: none (loopback-only API). */
  token?: string
  /** This node's own mDNS names (`<hostname>.local`, its bonjour host name): they pass the Host check. */
  localNames?: readonly string[]
}

/**
 * Route config of a route that serves no data and needs no token (the dashboard's page and static
 * files: a browser cannot send a header when it opens a page). `app.get(path, { config: PUBLIC_ROUTE }, h)`.
 */
export const PUBLIC_ROUTE = { public: true } as const

/** True when `header` carries `Bearer <token>` (constant-time comparison of digests). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '')
  if (m === null) return false
  const a = createHash('sha256').update(m[1].trim()).digest()
  const b = createHash('sha256').update(token).digest()
  return timingSafeEqual(a, b)
}

/** The host part of a Host header, lowercased, without port, brackets or a trailing dot; undefined if malformed. */
function hostName(hostHeader: string): { name: string; bracketed: boolean } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\s/@]+))(?::\d{1,5})?$/.exec(hostHeader.trim().toLowerCase())
  if (m === null) return undefined
  return { name: (m[1] ?? m[2]).replace(/\.$/, ''), bracketed: m[1] !== undefined }
}

/**
 * Whether a request's Host header may reach the API without the token: an IP literal, `localhost`
 * or one of `localNames` (this node's own `.local` names). Any other name, `.local` ones included,
 * is one a web page could make resolve to this machine.
 */
export function hostAllowed(hostHeader: string | undefined, localNames: readonly string[] = []): boolean {
  if (hostHeader === undefined || hostHeader === '') return true // HTTP/1.0 clients, inject()
  const h = hostName(hostHeader)
  if (h === undefined) return false
  if (h.bracketed) return isIP(h.name) === 6
  if (isIP(h.name) !== 0 || h.name === 'localhost') return true
  return localNames.some((n) => n.toLowerCase().replace(/\.$/, '') === h.name)
}

/**
 * Whether a request's `Origin` is acceptable: absent, or `http://<the Host it was sent to>` (same
 * scheme, host and port as the API). `null`, another scheme, host or port: refused.
 */
export function originAllowed(origin: string | undefined, hostHeader: string | undefined): boolean {
  if (origin === undefined) return true
  if (hostHeader === undefined || hostHeader === '') return false
  try {
    const o = new URL(origin)
    const own = new URL(`http://${hostHeader.trim()}`)
    return o.protocol === 'http:' && o.host === own.host && (o.pathname === '/' || o.pathname === '')
  } catch {
    return false
  }
}

/** A PUBLIC_ROUTE (serves no data): needs neither the token nor an allowed Host. */
function isPublic(req: FastifyRequest): boolean {
  return (req.routeOptions.config as { public?: unknown } | undefined)?.public === true
}

/** Installs the access hook (see the header) on every route of `app`. */
export function guardApi(app: FastifyInstance, init: ApiAccessInit): void {
  const { token, localNames = [] } = init
  app.addHook('onRequest', async (req, reply) => {
    if (isPublic(req) && req.method === 'GET') return
    if (MUTATING.has(req.method) && !originAllowed(req.headers.origin, req.headers.host)) {
      return sendError(reply, 'ERR_ORIGIN_NOT_ALLOWED', `Origin ${req.headers.origin} is not this API's own origin`)
    }
    const tokenOk = token !== undefined && bearerMatches(req.headers.authorization, token)
    if (!tokenOk && !hostAllowed(req.headers.host, localNames)) {
      return sendError(reply, 'ERR_HOST_NOT_ALLOWED', `Host ${req.headers.host} is not allowed`)
    }
    if (token === undefined || tokenOk || LOOPBACK_ADDRESS.test(req.ip ?? '')) return
    return sendError(reply.header('www-authenticate', 'Bearer'), 'ERR_UNAUTHORIZED', 'missing or wrong API token')
  })
}
