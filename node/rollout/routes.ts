/**
 * Rollout HTTP routes (a fastify plugin on the node API):
 *
 *   GET  /rollout                    → { device, acting, counters, releases: [ReleaseRolloutStatus] }
 *   GET  /rollout/:model/:version    → ReleaseRolloutStatus | 404 ERR_UNKNOWN_RELEASE
 *   POST /rollout/commands           { action, model, version, to_stage?, reason? }
 *        → 201 { command, digest }   (only on a node holding the operator key; else 403)
 *        → 404 ERR_UNKNOWN_RELEASE   (no manifest of that release on this node: nothing signed)
 *   POST /messages                   body: signed wire bytes (application/octet-stream)
 *        → 202 { status, digest }    (verified by the mesh like any message; 400 with the code if not)
 */
import type { FastifyPluginAsync } from 'fastify'
import { sha256Hex } from '../../protocols/encoding.ts'
import type { OperatorSigner } from '../../protocols/signing/index.ts'
import type { IngestResult } from '../mesh/ingest.ts'
import {
  buildCommand,
  type CommandRequest,
  RolloutNotRunningError,
  signCommand,
  UnknownReleaseError,
} from './commands.ts'
import type { RolloutController } from './rollout-controller.ts'

/** What the routes use. */
export interface RolloutRoutesDeps {
  controller: () => RolloutController | undefined
  fleet: string
  /** The operator key, when this node holds it. */
  signer?: OperatorSigner
  publish(bytes: Uint8Array): Promise<IngestResult>
  now?: () => number
}

/** HTTP status per error code (the rest of ERR_*: 400); node/api/errors.ts will hold the shared table. */
const STATUS_OF: Record<string, number> = { ERR_INTERNAL: 500, ERR_UNKNOWN_RELEASE: 404, ERR_NOT_RUNNING: 503 }

function errorReply(err: unknown): { status: number; body: { error: string; message: string } } {
  const e = err as { code?: string; message?: string }
  const code = typeof e.code === 'string' && e.code.startsWith('ERR_') ? e.code : 'ERR_INTERNAL'
  return { status: STATUS_OF[code] ?? 400, body: { error: code, message: e.message ?? String(err) } }
}

/** Builds the plugin. */
export function rolloutRoutes(deps: RolloutRoutesDeps): FastifyPluginAsync {
  const now = deps.now ?? Date.now
  return async (app) => {
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))

    app.get('/rollout', async (_req, reply) => {
      const c = deps.controller()
      if (c === undefined) return reply.status(503).send({ error: 'ERR_NOT_RUNNING', message: 'no rollout controller' })
      return c.statusJson()
    })

    app.get<{ Params: { model: string; version: string } }>('/rollout/:model/:version', async (req, reply) => {
      const r = deps
        .controller()
        ?.statusJson()
        .releases.find((x) => x.model === req.params.model && x.version === req.params.version)
      if (r === undefined) {
        const e = errorReply(new UnknownReleaseError(req.params.model, req.params.version))
        return reply.status(e.status).send(e.body)
      }
      return r
    })

    app.post<{ Body: CommandRequest }>('/rollout/commands', async (req, reply) => {
      if (deps.signer === undefined) {
        return reply.status(403).send({
          error: 'ERR_NO_OPERATOR_KEY',
          message: 'this node holds no operator key (use --fleet <dir> locally)',
        })
      }
      try {
        const body = req.body ?? ({} as CommandRequest)
        buildCommand(body, deps.fleet, now()) // a malformed request is a 400 before the lookup
        const c = deps.controller()
        if (c === undefined) throw new RolloutNotRunningError()
        if (!c.knows(body.model, body.version)) throw new UnknownReleaseError(body.model, body.version)
        const { command, wire } = await signCommand(body, deps.fleet, deps.signer, now())
        await deps.publish(wire)
        return reply.status(201).send({ command, digest: sha256Hex(wire) })
      } catch (err) {
        const r = errorReply(err)
        return reply.status(r.status).send(r.body)
      }
    })

    app.post('/messages', async (req, reply) => {
      const body = req.body
      if (!(body instanceof Uint8Array)) {
        return reply
          .status(400)
          .send({ error: 'ERR_INVALID_INPUT', message: 'send the signed wire bytes as application/octet-stream' })
      }
      try {
        const res = await deps.publish(new Uint8Array(body))
        return reply.status(202).send({ status: res.status, digest: sha256Hex(new Uint8Array(body)) })
      } catch (err) {
        const r = errorReply(err)
        return reply.status(r.status).send(r.body)
      }
    })
  }
}
