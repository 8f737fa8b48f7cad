/**
 * Release bundle routes, on every node that runs a Distribution (devices and the seed):
 *
 *   GET  /releases/:model/:version/export[?since=<version>]
 *        → { index, release, trust: [{ file, wire }], proofs }   (base64 of the bundle's small files)
 *        | 404 ERR_UNKNOWN_RELEASE | 409 ERR_RELEASE_INCOMPLETE (this node lacks blocks)
 *   GET  /releases/:model/:version/chunks/:sha256 → the chunk's bytes (checked against its hash)
 *   POST /releases/import   body: an import upload (protocols/release-bundle.ts, application/octet-stream)
 *        → 201 ImportResult | 400/409 BundleError naming the bundle file and the reason
 *
 * The CLI (cli/commands/release-bundle.ts) turns the first two into a bundle directory and a
 * bundle directory into the third. Imports run one at a time.
 */
import { join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import { LlmeshError } from '../../protocols/errors.ts'
import type { DaemonContext } from '../daemon-context.ts'
import type { Logger } from '../logger.ts'
import type { ModelStore } from '../store/model-store.ts'
import { heldRelease, planExport, readChunk } from './bundle-export.ts'
import { importBundle } from './bundle-import.ts'
import { IMPORT_STAGING_DIR } from './constants.ts'

/** The JSON of `GET /releases/:model/:version/export`. */
export interface ExportResponse {
  index: unknown
  release: string
  trust: { file: string; wire: string }[]
  proofs: string
}

/** What the routes use. */
export interface BundleRoutesDeps {
  ctx: Pick<DaemonContext, 'store' | 'publish' | 'verify' | 'identity' | 'config'>
  /** The node's model store (after the distribution service started). */
  store: () => ModelStore | undefined
  logger: Logger
}

type Params = { model: string; version: string }
const HASH = /^[0-9a-f]{64}$/

/** The bundle routes (a fastify plugin). */
export function bundleRoutes(deps: BundleRoutesDeps): FastifyPluginAsync {
  const { ctx } = deps
  const modelStore = (): ModelStore => {
    const s = deps.store()
    if (s === undefined) throw new LlmeshError('ERR_NOT_RUNNING', 'the model store is not running')
    return s
  }
  let importing = false
  return async (app) => {
    app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload))

    app.get<{ Params: Params; Querystring: { since?: string } }>('/releases/:model/:version/export', async (req) => {
      const since = typeof req.query.since === 'string' && req.query.since !== '' ? req.query.since : undefined
      const plan = await planExport(
        { store: modelStore(), messages: ctx.store, self: ctx.identity.peerId },
        req.params.model,
        req.params.version,
        since,
      )
      const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64')
      const out: ExportResponse = {
        index: plan.index,
        release: b64(plan.release),
        trust: plan.trust.map((t) => ({ file: t.file, wire: b64(t.wire) })),
        proofs: b64(plan.proofs),
      }
      return out
    })

    app.get<{ Params: Params & { hash: string } }>('/releases/:model/:version/chunks/:hash', async (req, reply) => {
      if (!HASH.test(req.params.hash))
        throw new LlmeshError('ERR_INVALID_INPUT', 'a chunk is named by its sha256 (hex)')
      const m = heldRelease(ctx.store, req.params.model, req.params.version).message
      const data = await readChunk(modelStore(), m, req.params.hash)
      return reply.type('application/octet-stream').send(data)
    })

    app.post('/releases/import', async (req, reply) => {
      const body = req.body as AsyncIterable<Uint8Array> & { resume?: () => void }
      if (typeof body?.[Symbol.asyncIterator] !== 'function')
        throw new LlmeshError('ERR_UNSUPPORTED_MEDIA_TYPE', 'a bundle is uploaded as application/octet-stream')
      if (importing) {
        body.resume?.()
        throw new LlmeshError('ERR_IMPORT_BUSY', 'another bundle is being imported on this node')
      }
      importing = true
      try {
        const out = await importBundle(body, {
          store: modelStore(),
          verify: ctx.verify,
          publish: ctx.publish,
          stagingDir: join(ctx.config.dataDir, IMPORT_STAGING_DIR),
        })
        deps.logger.info(out, 'release bundle imported')
        return reply.status(201).send(out)
      } catch (err) {
        body.resume?.() // the rest of the upload is drained, not read
        const code = (err as { code?: unknown }).code
        deps.logger.warn({ code, reason: (err as Error).message }, 'release bundle refused')
        throw err
      } finally {
        importing = false
      }
    })
  }
}
