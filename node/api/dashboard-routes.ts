/**
 * The fleet dashboard on a node's local HTTP API (a fastify plugin):
 *
 *   GET /dashboard               → the page (HTML; public: it holds no data and no secret)
 *   GET /dashboard/<file>        → its static ES modules and CSS from node/api/dashboard/ (public)
 *   GET /dashboard/fleet         → { node: { id, role, fleet, operator, report_interval_ms }, now, devices }
 *                                  (data: needs the API token like every other route)
 *   GET /dashboard/verdicts/:digest → a verdict with the signed reports it cites (dashboard-evidence.ts;
 *                                  data: needs the token; ERR_INVALID_INPUT, ERR_NOT_FOUND)
 *
 * The page itself reads the JSON API (/status, /rollout, /releases on the seed, /dashboard/fleet,
 * /history/… for the persona views)
 * with the token the operator typed (kept in the tab's sessionStorage, sent as a bearer header),
 * and, when this node holds the operator key, sends POST /rollout/commands. No build step: the
 * browser code is plain ES modules with JSDoc types, read once when the plugin is built.
 */
import { readFileSync } from 'node:fs'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { DaemonContext } from '../daemon.ts'
import { PUBLIC_ROUTE } from './access.ts'
import { DIGEST_RE, verdictEvidence } from './dashboard-evidence.ts'
import { type DashboardFleet, dashboardDevices } from './dashboard-fleet.ts'
import { sendError } from './errors.ts'

/** Options of the dashboard routes. */
export interface DashboardInit {
  /** Whether this node holds the operator key (POST /rollout/commands works): shows the controls. */
  operator: boolean
  now?: () => number
}

/** What the routes use. */
export interface DashboardComponents {
  ctx: Pick<DaemonContext, 'config' | 'identity' | 'store' | 'mesh'>
}

/** The static files, by name, with their content type. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app-views.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'render.js': 'text/javascript; charset=utf-8',
  'render-releases.js': 'text/javascript; charset=utf-8',
  'release-parts.js': 'text/javascript; charset=utf-8',
  'render-problems.js': 'text/javascript; charset=utf-8',
  'site-filter.js': 'text/javascript; charset=utf-8',
  'render-devices.js': 'text/javascript; charset=utf-8',
  'render-node.js': 'text/javascript; charset=utf-8',
  'render-timeline.js': 'text/javascript; charset=utf-8',
  'history.js': 'text/javascript; charset=utf-8',
  'plot.js': 'text/javascript; charset=utf-8',
  'views.js': 'text/javascript; charset=utf-8',
  'views-product.js': 'text/javascript; charset=utf-8',
  'view-parts.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
}

/**
 * Same-origin everything, no inline script or style, no framing: whatever a device name or tag
 * holds, the page renders it as text (DOM text nodes) and cannot load or run anything else.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
}

function loadFiles(): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  for (const name of Object.keys(FILES)) out.set(name, readFileSync(new URL(`./dashboard/${name}`, import.meta.url)))
  return out
}

/** Builds the plugin. */
export function dashboardRoutes(components: DashboardComponents, init: DashboardInit): FastifyPluginAsync {
  const now = init.now ?? Date.now
  const files = loadFiles()
  const { ctx } = components
  return async (app) => {
    const page = (reply: FastifyReply) => secure(reply).type(FILES['index.html']).send(files.get('index.html'))
    app.get('/dashboard', { config: PUBLIC_ROUTE }, async (_req, reply) => page(reply))
    app.get('/dashboard/', { config: PUBLIC_ROUTE }, async (_req, reply) => page(reply))

    app.get('/dashboard/fleet', async (_req, reply) =>
      secure(reply).send({
        node: {
          id: ctx.identity.peerId,
          role: ctx.config.role,
          fleet: ctx.config.fleet,
          operator: init.operator,
          report_interval_ms: ctx.config.reportIntervalMs,
        },
        now: now(),
        devices: dashboardDevices(ctx.store, ctx.identity.peerId, now(), ctx.mesh),
      } satisfies DashboardFleet),
    )

    app.get<{ Params: { digest: string } }>('/dashboard/verdicts/:digest', async (req, reply) => {
      if (!DIGEST_RE.test(req.params.digest))
        return sendError(secure(reply), 'ERR_INVALID_INPUT', 'a verdict digest is 64 lowercase hex characters')
      const v = verdictEvidence(ctx.store, req.params.digest)
      if (v === undefined) return sendError(secure(reply), 'ERR_NOT_FOUND', 'no such verdict on this node')
      return secure(reply).send(v)
    })

    app.get<{ Params: { file: string } }>('/dashboard/:file', { config: PUBLIC_ROUTE }, async (req, reply) => {
      const body = files.get(req.params.file)
      if (body === undefined) return sendError(secure(reply), 'ERR_NOT_FOUND', 'no such file')
      return secure(reply).type(FILES[req.params.file]).send(body)
    })
  }
}
