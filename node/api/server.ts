/**
 * The node's local HTTP API (fastify). Routes come as plugins (`/status` from the daemon, later
 * `/metrics` and `/v1/…` from other services). start()/stop() are idempotent; `url` is known once
 * started (the port may be 0 = any free port).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyRequest } from 'fastify'
import { InvalidInputError } from '../../protocols/errors.ts'
import type { Logger } from '../logger.ts'

/** Options of the API server. */
export interface ApiServerInit {
  /** `host:port` (IPv6 as `[::1]:port`). */
  address: string
  plugins: FastifyPluginAsync[]
  /**
   * Bearer token required from callers that are not on loopback, on every route (the API can sign
   * operator commands and serves the model). Unset: no auth (the default API listens on loopback).
   */
  apiToken?: string
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/

/** True when `header` carries `Bearer <token>` (constant-time comparison of digests). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '')
  if (m === null) return false
  const a = createHash('sha256').update(m[1].trim()).digest()
  const b = createHash('sha256').update(token).digest()
  return timingSafeEqual(a, b)
}

/** What the server uses. */
export interface ApiServerComponents {
  logger: Logger
}

/** Splits `host:port`. */
export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address.trim())
  if (m === null) throw new InvalidInputError(`expected host:port, got ${address}`)
  const port = Number(m[3])
  if (port > 65535) throw new InvalidInputError(`port out of range in ${address}`)
  return { host: m[1] ?? (m[2] === '' ? '127.0.0.1' : m[2]), port }
}

/**
 * Route config of a route that serves no data and needs no token (the dashboard's page and static
 * files: a browser cannot send a header when it opens a page). `app.get(path, { config: PUBLIC_ROUTE }, h)`.
 */
export const PUBLIC_ROUTE = { public: true } as const

/**
 * Whether a request's Host header may reach the API without the token: an IP literal,
 * `localhost` (or `*.localhost`) or an mDNS `*.local` name. Anything else is a DNS name a web page
 * could rebind to this machine's loopback to drive the API from the operator's own browser.
 */
export function hostAllowed(hostHeader: string | undefined): boolean {
  if (hostHeader === undefined || hostHeader === '') return true // HTTP/1.0 clients, inject()
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d{1,5})?$/.exec(hostHeader.trim().toLowerCase())
  if (m === null) return false
  const name = (m[1] ?? m[2]).replace(/\.$/, '')
  if (m[1] !== undefined || isIP(name) !== 0) return true
  return name === 'localhost' || name.endsWith('.localhost') || name.endsWith('.local')
}

/**
 * Refuses (403 `host_not_allowed`) requests whose Host header fails `hostAllowed` unless they carry
 * the token: a DNS-rebinding page in a browser on a node cannot send the token, nor a Host that passes.
 * PUBLIC_ROUTEs (the dashboard's page, which holds no data) load under any name; their data
 * requests then carry the token the operator types in.
 */
export function refuseRebinding(app: FastifyInstance, token: string | undefined): void {
  app.addHook('onRequest', async (req, reply) => {
    if (isPublic(req) || hostAllowed(req.headers.host)) return
    if (token !== undefined && bearerMatches(req.headers.authorization, token)) return
    await reply.status(403).send({
      error: {
        message: `Host ${req.headers.host} is not allowed`,
        type: 'invalid_request_error',
        code: 'host_not_allowed',
      },
    })
  })
}

/** A PUBLIC_ROUTE (serves no data): needs neither the token nor an allowed Host. */
function isPublic(req: FastifyRequest): boolean {
  return (req.routeOptions.config as { public?: unknown } | undefined)?.public === true
}

/** Makes every route of `app` except PUBLIC_ROUTE ones require `token` from callers that are not on loopback. */
export function requireApiToken(app: FastifyInstance, token: string): void {
  app.addHook('onRequest', async (req, reply) => {
    if (isPublic(req) || LOOPBACK.test(req.ip ?? '') || bearerMatches(req.headers.authorization, token)) return
    await reply
      .status(401)
      .header('www-authenticate', 'Bearer')
      .send({
        error: { message: 'missing or wrong API token', type: 'invalid_request_error', code: 'invalid_api_key' },
      })
  })
}

/** The fastify server. */
export class ApiServer {
  private app: FastifyInstance | undefined
  private readonly init: ApiServerInit
  private readonly log: Logger
  private urlValue: string | undefined

  constructor(init: ApiServerInit, components: ApiServerComponents) {
    this.init = init
    this.log = components.logger
  }

  /** Base URL once started (`http://host:port`). */
  get url(): string | undefined {
    return this.urlValue
  }

  async start(): Promise<void> {
    if (this.app !== undefined) return
    const { host, port } = parseHostPort(this.init.address)
    const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 })
    app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
      const status = err.statusCode ?? 500
      if (status >= 500) this.log.error({ err }, 'api error')
      void reply.status(status).send({ error: err.message })
    })
    refuseRebinding(app, this.init.apiToken)
    if (this.init.apiToken !== undefined) requireApiToken(app, this.init.apiToken)
    for (const p of this.init.plugins) await app.register(p)
    this.app = app
    try {
      await app.listen({ host, port })
    } catch (err) {
      this.app = undefined
      await app.close()
      throw err
    }
    const addr = app.server.address()
    const actual = typeof addr === 'object' && addr !== null ? addr.port : port
    this.urlValue = `http://${host.includes(':') ? `[${host}]` : host}:${actual}`
  }

  async stop(): Promise<void> {
    const app = this.app
    if (app === undefined) return
    this.app = undefined
    await app.close()
  }
}
