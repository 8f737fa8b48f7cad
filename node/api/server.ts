/**
 * The node's local HTTP API (fastify). Routes come as plugins (`/status` from the daemon, later
 * `/metrics` and `/v1/…` from other services). start()/stop() are idempotent; `url` is known once
 * started (the port may be 0 = any free port).
 *
 * Start: the bind address is checked first (exposure.ts: beyond loopback needs a token or
 * `insecure`), then the app is built: the error contract (errors.ts), the access hook (access.ts),
 * the plugins; then it listens.
 */
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type InjectOptions,
  type LightMyRequestResponse,
} from 'fastify'
import type { Logger } from '../logger.ts'
import { guardApi } from './access.ts'
import { installErrorHandlers } from './errors.ts'
import { checkApiExposure, INSECURE_API_WARNING } from './exposure.ts'
import { parseHostPort } from './host-port.ts'

/** Largest request body the API parses (uploads stream through their own parser). */
export const API_BODY_LIMIT = 1024 * 1024
/** Largest request head (Node's default is 16 KiB): a publish's policy and probe set headers fit. */
export const API_MAX_HEADER_BYTES = 256 * 1024

/**
 * The API's routes validate their input with zod and reply with plain JSON, so no route declares a
 * fastify schema. Given as fastify's schema compilers, this keeps fastify from loading its own (ajv
 * and fast-json-stringify, ~0.3 MB of code an idle device would hold for nothing; docs/benchmarks.md,
 * "Idle footprint", seventh pass), and refuses a route that declares a schema.
 */
function noRouteSchemas(): never {
  throw new Error('API routes validate with zod: a fastify route schema is not supported (node/api/server.ts)')
}

/** Options of the API server. */
export interface ApiServerInit {
  /** `host:port` (IPv6 as `[::1]:port`). */
  address: string
  plugins: FastifyPluginAsync[]
  /**
   * Bearer token required from callers that are not on loopback, on every route (the API can sign
   * operator commands and serves the model). Unset: no auth, and the address must be loopback
   * unless `insecure`.
   */
  apiToken?: string
  /** Accept a non-loopback address without a token (`--api-insecure`; logged as a warning). */
  insecure?: boolean
  /** This node's own `.local` names, accepted in the Host header (access.ts). */
  localNames?: readonly string[]
}

/** What the server uses. */
export interface ApiServerComponents {
  logger: Logger
}

/** One registered route. */
export interface ApiRoute {
  method: string
  url: string
}

/**
 * Builds the app (error contract, access hook, plugins) without listening. `routes` receives
 * every route registered, plugins' included.
 */
export async function buildApiApp(
  init: Omit<ApiServerInit, 'address' | 'insecure'>,
  log: Logger,
  routes: ApiRoute[] = [],
): Promise<FastifyInstance> {
  // fastify's request logger is the daemon's, at warn or above (its per-request lines are info: off)
  const level = log.levelVal > 40 ? log.level : 'warn'
  const app = Fastify({
    loggerInstance: log.child({ svc: 'http' }, { level }) as FastifyBaseLogger,
    bodyLimit: API_BODY_LIMIT,
    // a publish carries its policy and probe set in headers (base64, each bounded by its parser)
    http: { maxHeaderSize: API_MAX_HEADER_BYTES },
    schemaController: { compilersFactory: { buildValidator: noRouteSchemas, buildSerializer: noRouteSchemas } },
  })
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url })
  })
  installErrorHandlers(app, log)
  guardApi(app, { token: init.apiToken, localNames: init.localNames })
  for (const p of init.plugins) await app.register(p)
  return app
}

/** The fastify server. */
export class ApiServer {
  private app: FastifyInstance | undefined
  private readonly init: ApiServerInit
  private readonly log: Logger
  private urlValue: string | undefined
  private routeList: ApiRoute[] = []

  constructor(components: ApiServerComponents, init: ApiServerInit) {
    this.init = init
    this.log = components.logger
  }

  /** Base URL once started (`http://host:port`). */
  get url(): string | undefined {
    return this.urlValue
  }

  /** Every route of the app (after start). */
  get routes(): readonly ApiRoute[] {
    return this.routeList
  }

  /** Sends a request through the app without a socket (fastify `inject`; after start). */
  async inject(opts: InjectOptions): Promise<LightMyRequestResponse> {
    if (this.app === undefined) throw new Error('the API is not started')
    return this.app.inject(opts)
  }

  async start(): Promise<void> {
    if (this.app !== undefined) return
    const { host, port } = parseHostPort(this.init.address)
    // refuses before anything listens
    if (checkApiExposure({ ...this.init, token: this.init.apiToken }) === 'insecure') {
      this.log.warn({ api: this.init.address }, INSECURE_API_WARNING)
    }
    const routes: ApiRoute[] = []
    const app = await buildApiApp(this.init, this.log, routes)
    this.app = app
    try {
      await app.listen({ host, port })
    } catch (err) {
      this.app = undefined
      await app.close()
      throw err
    }
    this.routeList = routes
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
