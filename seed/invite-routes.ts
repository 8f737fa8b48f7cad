/**
 * The seed's invite route (a fastify plugin, behind the API token hook like every route):
 *
 *   POST /invites  { tags?: string[], name?: string, ttl_ms?: number, uses?: number }
 *        → 201 { file, invite }   (`file`: the invite file, to hand to one device; `invite`: what it says)
 *        400 ERR_INVALID_INPUT
 *
 * Signs a DeviceInvite with the operator key held by the seed (protocols/membership/invite.ts).
 * Nothing is stored or gossiped: the invite reaches the fleet inside the claim of the device that
 * presents it. The answer holds the invite key: whoever reads it may claim the invite.
 */
import type { FastifyPluginAsync } from 'fastify'
import { errorReply } from '../node/api/errors.ts'
import type { DaemonContext } from '../node/daemon.ts'
import { LlmeshError } from '../protocols/errors.ts'
import { createInvite, DEFAULT_INVITE_TTL_MS } from '../protocols/membership/index.ts'
import type { OperatorSigner } from '../protocols/signing/index.ts'
import { validTags } from './devices.ts'

/** What the route uses. */
export interface InviteRoutesDeps {
  ctx: Pick<DaemonContext, 'config' | 'logger'>
  signer: OperatorSigner
  now?: () => number
}

interface InviteBody {
  tags?: unknown
  name?: unknown
  ttl_ms?: unknown
  uses?: unknown
}

/** Checks an invite request's body. Throws LlmeshError ERR_INVALID_INPUT. */
export function inviteRequest(body: InviteBody): { tags: string[]; name?: string; ttlMs: number; uses: number } {
  if (body.tags !== undefined && !Array.isArray(body.tags))
    throw new LlmeshError('ERR_INVALID_INPUT', 'tags must be a list')
  if (body.name !== undefined && (typeof body.name !== 'string' || body.name.length === 0 || body.name.length > 64))
    throw new LlmeshError('ERR_INVALID_INPUT', 'name must be 1 to 64 characters')
  const ttl = body.ttl_ms ?? DEFAULT_INVITE_TTL_MS
  const uses = body.uses ?? 1
  if (typeof ttl !== 'number' || typeof uses !== 'number')
    throw new LlmeshError('ERR_INVALID_INPUT', 'ttl_ms and uses must be numbers')
  return {
    tags: validTags((body.tags as unknown[] | undefined) ?? []),
    ...(typeof body.name === 'string' ? { name: body.name } : {}),
    ttlMs: ttl,
    uses,
  }
}

/** Builds the plugin. */
export function inviteRoutes(deps: InviteRoutesDeps): FastifyPluginAsync {
  const now = deps.now ?? Date.now
  const log = deps.ctx.logger.child({ svc: 'invites' })
  return async (app) => {
    app.post<{ Body: InviteBody }>('/invites', async (req, reply) => {
      try {
        const r = inviteRequest(req.body ?? {})
        const { file, invite } = await createInvite({ fleet: deps.ctx.config.fleet, ...r, now: now() }, deps.signer)
        log.info(
          { invite: invite.id, tags: invite.tags, uses: invite.uses, expires_at: invite.expires_at },
          'invite issued',
        )
        const { public_key: _k, ...shown } = invite
        return reply.code(201).send({ file, invite: shown })
      } catch (err) {
        const r = errorReply(err)
        if (r.log) log.error({ err }, 'invite failed')
        return reply.code(r.status).send(r.body)
      }
    })
  }
}
