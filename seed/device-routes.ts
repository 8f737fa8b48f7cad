/**
 * Seed HTTP routes for operator device management (a fastify plugin; behind the API token hook
 * like every route of the node API):
 *
 *   GET  /devices                      → { devices: [DeviceView] }  (enrolled, revoked, seen-but-unenrolled)
 *   GET  /devices/:peer                → DeviceView | 404
 *   POST /devices/:peer/enrollment     { tags?: string[], capabilities?, retag?: boolean }
 *        → 201 { enrollment, digest, pinned }
 *        With `tags`: the operator pins the device's tags (the auto-enroller leaves them alone).
 *        Without: the device's declared tags, and the enrollment stays automatic.
 *        `retag: true` refuses a device that holds no enrollment (403 ERR_NOT_ENROLLED).
 *        Capabilities come from the device's hello, else its last enrollment, else the body.
 *   POST /devices/:peer/revocation     { reason } → 201 { revocation, digest }
 *   Errors: { error: { code, message } } with the status of node/api/errors.ts: 400 ERR_INVALID_INPUT |
 *   ERR_UNKNOWN_DEVICE | verification code, 409 ERR_REVOKED.
 *
 * Signs with the operator key held by the seed and publishes through the mesh (verified, stored,
 * gossiped), so every node applies the result.
 */
import type { FastifyPluginAsync } from 'fastify'
import { errorReply, sendError } from '../node/api/errors.ts'
import type { DaemonContext } from '../node/daemon.ts'
import { storeViewInput } from '../node/fleet-view.ts'
import { LlmeshError } from '../protocols/errors.ts'
import { DeviceEnrollment, type Revocation } from '../protocols/schemas/index.ts'
import { type OperatorSigner, signOperatorMessage } from '../protocols/signing/index.ts'
import { messageIdOfWire } from '../protocols/signing/message-id.ts'
import type { AutoEnrollmentLedger } from './auto-enrollments.ts'
import {
  buildEnrollment,
  buildRevocation,
  type DeviceView,
  type EnrollmentRecord,
  latestEnrollment,
  listDevices,
  validPeer,
  validTags,
} from './devices.ts'

/** What the routes use. */
export interface DeviceRoutesDeps {
  ctx: Pick<DaemonContext, 'store' | 'mesh' | 'publish' | 'config' | 'logger' | 'identity'>
  signer: OperatorSigner
  ledger: AutoEnrollmentLedger
  now?: () => number
}

/** The body of `POST /devices/:peer/enrollment` (every field checked by the route). */
export interface EnrollBody {
  tags?: unknown
  capabilities?: unknown
  retag?: unknown
}

/** What a client sends as `POST /devices/:peer/enrollment`. */
export interface EnrollRequest {
  tags?: string[]
  capabilities?: DeviceEnrollment['capabilities']
  retag?: boolean
}

/** The JSON of `GET /devices`. */
export interface DeviceListResponse {
  devices: DeviceView[]
}

/** The JSON of `POST /devices/:peer/enrollment` (201). */
export interface EnrollResponse {
  enrollment: DeviceEnrollment
  digest: string
  pinned: boolean
}

/** The JSON of `POST /devices/:peer/revocation` (201). */
export interface RevokeResponse {
  revocation: Revocation
  digest: string
}

/** The device list as this node sees it. */
export function deviceList(deps: DeviceRoutesDeps): DeviceView[] {
  const { store, mesh } = deps.ctx
  const now = (deps.now ?? Date.now)()
  return listDevices({
    ...storeViewInput(store, { mesh, now }),
    connected: new Set(mesh.peers()),
    isAuto: (d) => deps.ledger.isAuto(d),
  })
}

/** Builds the plugin. */
export function deviceRoutes(deps: DeviceRoutesDeps): FastifyPluginAsync {
  const now = deps.now ?? Date.now
  const { ctx } = deps
  const log = ctx.logger.child({ svc: 'devices' })
  let chain: Promise<unknown> = Promise.resolve()
  /** One operator write at a time, so two re-tags of one device get increasing issued_at. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.catch(() => undefined).then(fn)
    chain = next
    return next
  }

  const enroll = async (peer: string, body: EnrollBody): Promise<EnrollResponse> => {
    const device = validPeer(peer)
    if (ctx.store.revocationOf(device) !== undefined)
      throw new LlmeshError('ERR_REVOKED', `${device} is revoked (final): enroll the device under a new identity`)
    const latest = latestEnrollment(
      ctx.store.forDevice(device).filter((m) => m.type === 'DeviceEnrollment') as EnrollmentRecord[],
    )
    if (body.retag === true && ctx.store.enrollmentOf(device) === undefined)
      throw new LlmeshError('ERR_NOT_ENROLLED', `${device} holds no enrollment: use enroll`)
    const hello = ctx.mesh.state === 'running' ? ctx.mesh.antiEntropy.hellos.get(device) : undefined
    const pinned = body.tags !== undefined
    if (pinned && !Array.isArray(body.tags)) throw new LlmeshError('ERR_INVALID_INPUT', 'tags must be a list')
    let tags: string[]
    if (pinned) tags = validTags(body.tags as unknown[])
    else if (hello !== undefined) tags = hello.tags
    else if (latest !== undefined) tags = [...latest.message.tags]
    else throw new LlmeshError('ERR_UNKNOWN_DEVICE', `${device} was never seen: give its tags`)
    let capabilities = hello?.capabilities ?? latest?.message.capabilities
    if (body.capabilities !== undefined) {
      const c = DeviceEnrollment.shape.capabilities.safeParse(body.capabilities)
      if (!c.success) throw new LlmeshError('ERR_INVALID_INPUT', `bad capabilities: ${c.error.issues[0]?.message}`)
      capabilities = c.data
    }
    if (capabilities === undefined)
      throw new LlmeshError('ERR_UNKNOWN_DEVICE', `${device} was never seen: give its capabilities`)
    const msg = buildEnrollment({
      fleet: ctx.config.fleet,
      device,
      tags,
      capabilities,
      // the name the operator chose (invite) stays; else the one the device declares
      ...(latest?.message.name === undefined && hello?.name !== undefined ? { name: hello.name } : {}),
      current: latest?.message,
      now: now(),
    })
    const wire = await signOperatorMessage(msg, deps.signer)
    const digest = messageIdOfWire(wire)
    if (!pinned) deps.ledger.add(digest)
    await ctx.publish(wire)
    log.info({ device, tags: msg.tags, pinned }, 'device enrolled by the operator')
    return { enrollment: msg, digest, pinned }
  }

  const revoke = async (peer: string, reason: unknown): Promise<RevokeResponse> => {
    const device = validPeer(peer)
    if (device === ctx.identity.peerId) throw new LlmeshError('ERR_INVALID_INPUT', 'the seed cannot revoke itself')
    if (ctx.store.revocationOf(device) !== undefined)
      throw new LlmeshError('ERR_REVOKED', `${device} is already revoked`)
    const msg = buildRevocation(ctx.config.fleet, device, typeof reason === 'string' ? reason : '', now())
    const wire = await signOperatorMessage(msg, deps.signer)
    await ctx.publish(wire)
    log.warn({ device, reason: msg.reason }, 'device revoked by the operator')
    return { revocation: msg, digest: messageIdOfWire(wire) }
  }

  return async (app) => {
    app.get('/devices', async (): Promise<DeviceListResponse> => ({ devices: deviceList(deps) }))

    app.get<{ Params: { peer: string } }>('/devices/:peer', async (req, reply) => {
      const d = deviceList(deps).find((x) => x.id === req.params.peer)
      if (d === undefined) return sendError(reply, 'ERR_NOT_FOUND', `no device ${req.params.peer} known`)
      return d
    })

    app.post<{ Params: { peer: string }; Body: EnrollBody }>('/devices/:peer/enrollment', async (req, reply) => {
      try {
        return reply.code(201).send(await serial(() => enroll(req.params.peer, req.body ?? {})))
      } catch (err) {
        const r = errorReply(err)
        if (r.log) log.error({ err }, 'enrollment failed')
        return reply.code(r.status).send(r.body)
      }
    })

    app.post<{ Params: { peer: string }; Body: { reason?: unknown } }>(
      '/devices/:peer/revocation',
      async (req, reply) => {
        try {
          return reply.code(201).send(await serial(() => revoke(req.params.peer, req.body?.reason)))
        } catch (err) {
          const r = errorReply(err)
          if (r.log) log.error({ err }, 'revocation failed')
          return reply.code(r.status).send(r.body)
        }
      },
    )
  }
}
