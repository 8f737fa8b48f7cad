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
 *   Errors: { error: { code, message } } with the status of node/api/errors.ts.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { OperatorCommand } from '../../protocols/schemas/index.ts'
import type { OperatorSigner } from '../../protocols/signing/index.ts'
import { messageIdOfWire } from '../../protocols/signing/message-id.ts'
import { errorReply, sendError } from '../api/errors.ts'
import type { IngestResult } from '../mesh/ingest.ts'
import {
  buildCommand,
  type CommandRequest,
  RolloutNotRunningError,
  signCommand,
  UnknownReleaseError,
} from './commands.ts'
import type { RolloutController } from './rollout-controller.ts'

/** The JSON of `GET /rollout`. */
export type RolloutJson = ReturnType<RolloutController['statusJson']>

/** The JSON of `GET /rollout/:model/:version`. */
export type ReleaseRolloutJson = RolloutJson['releases'][number]

/** The JSON of `POST /rollout/commands` (201). */
export interface CommandResponse {
  command: OperatorCommand
  digest: string
}

/** The JSON of `POST /messages` (202). */
export interface MessageResponse {
  status: IngestResult['status']
  digest: string
}

/** What the routes use. */
export interface RolloutRoutesDeps {
  controller: () => RolloutController | undefined
  fleet: string
  /** The operator key, when this node holds it. */
  signer?: OperatorSigner
  publish(bytes: Uint8Array): Promise<IngestResult>
  now?: () => number
}

/** Builds the plugin. */
export function rolloutRoutes(deps: RolloutRoutesDeps): FastifyPluginAsync {
  const now = deps.now ?? Date.now
  return async (app) => {
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))

    app.get('/rollout', async (_req, reply) => {
      const c = deps.controller()
      if (c === undefined) return sendError(reply, 'ERR_NOT_RUNNING', 'no rollout controller')
      const out: RolloutJson = c.statusJson()
      return out
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
        return sendError(reply, 'ERR_NO_OPERATOR_KEY', 'this node holds no operator key (use --fleet <dir> locally)')
      }
      try {
        const body = req.body ?? ({} as CommandRequest)
        buildCommand(body, deps.fleet, now()) // a malformed request is a 400 before the lookup
        const c = deps.controller()
        if (c === undefined) throw new RolloutNotRunningError()
        if (!c.knows(body.model, body.version)) throw new UnknownReleaseError(body.model, body.version)
        const { command, wire } = await signCommand(body, deps.fleet, deps.signer, now())
        await deps.publish(wire)
        const out: CommandResponse = { command, digest: messageIdOfWire(wire) }
        return reply.status(201).send(out)
      } catch (err) {
        const r = errorReply(err)
        if (r.log) req.log.error({ err }, 'rollout route failed')
        return reply.status(r.status).send(r.body)
      }
    })

    app.post('/messages', async (req, reply) => {
      const body = req.body
      if (!(body instanceof Uint8Array)) {
        return sendError(reply, 'ERR_INVALID_INPUT', 'send the signed wire bytes as application/octet-stream')
      }
      try {
        const res = await deps.publish(new Uint8Array(body))
        const out: MessageResponse = { status: res.status, digest: messageIdOfWire(new Uint8Array(body)) }
        return reply.status(202).send(out)
      } catch (err) {
        const r = errorReply(err)
        if (r.log) req.log.error({ err }, 'rollout route failed')
        return reply.status(r.status).send(r.body)
      }
    })
  }
}
