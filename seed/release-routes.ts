/**
 * Seed HTTP routes for releases (a fastify plugin):
 *
 *   POST /releases?model=&version=[&approved_by=a,b][&arch=x64,arm64][&runtime=][&min_ram_mb=][&ttl_days=][&allow_downgrade=1]
 *        body: the GGUF file (application/octet-stream, streamed to disk)
 *        header `x-llmesh-policy`: base64 of a policy YAML (optional; default policy otherwise)
 *        header `x-llmesh-filename`: the client's file name, used in error messages (optional)
 *        → 201 { manifest, digest, new_chunks, new_bytes }
 *        | 400 invalid request or not GGUF | 409 ERR_VERSION_EXISTS / ERR_DOWNGRADE | 413 too large
 *   GET  /releases                          → { releases: [{ model, version, seq, size, sha256, chunks, created_at, expires_at, digest, downgrade_from? }] }
 *   GET  /releases/:model/:version          → { manifest, digest }
 *   GET  /releases/:model/:version/bundle   → the signed wire envelope, byte for byte ({ kind, type, bundle })
 *
 * A publish is refused before its body is read when the request, the version (duplicate,
 * downgrade) or the policy is wrong; before its body is written to disk when it does not start
 * as a GGUF file; and before any chunk is appended when the header is not loadable (see
 * seed/publish.ts). Publishes run one at a time (each takes the next per-model seq, and the
 * duplicate check is repeated in that queue). Every refusal is counted by its error code
 * (`llmesh_publish_refusals_total{code}`, seed/publish-metrics.ts).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import type { PublishedRelease } from '../node/api/dashboard-fleet.ts'
import { errorReply, sendError } from '../node/api/errors.ts'
import type { Logger } from '../node/logger.ts'
import type { ModelStore } from '../node/store/model-store.ts'
import type { ReleaseManifest } from '../protocols/schemas/index.ts'
import type { OperatorSigner } from '../protocols/signing/index.ts'
import { MAX_UPLOAD_BYTES } from './constants.ts'
import { publishRelease } from './publish.ts'
import type { PublishMetrics } from './publish-metrics.ts'
import { type PublishQuery, parsePublishRequest, uploadName } from './publish-query.ts'
import { checkVersion, type KnownRelease, preflightManifest } from './release-checks.ts'
import type { SeqAuthority } from './seq-authority.ts'
import { spoolUpload } from './upload.ts'

/** A release the seed holds: the manifest, its digest and the signed wire bytes. */
export interface HeldRelease {
  manifest: ReleaseManifest
  digest: string
  /** The exact signed wire bytes (canonical JSON of the envelope). */
  bytes: Uint8Array
}

/** One row of `GET /releases` (the dashboard reads the same type). */
export type ReleaseRow = PublishedRelease

/** The JSON of `GET /releases`. */
export interface ReleaseListResponse {
  releases: ReleaseRow[]
}

/** The JSON of `GET /releases/:model/:version`. */
export interface ReleaseResponse {
  manifest: ReleaseManifest
  digest: string
}

/** The JSON of `POST /releases` (201). */
export interface PublishResponse {
  manifest: ReleaseManifest
  digest: string
  new_chunks: number
  new_bytes: number
}

/** What the routes use. */
export interface ReleaseRoutesDeps {
  store: ModelStore
  signer: OperatorSigner
  fleet: string
  /** Where uploads are spooled (deleted once chunked into the feed). */
  uploadDir: string
  /** Verifies, stores and gossips signed wire bytes (the daemon's `ctx.publish`). */
  publish: (wire: Uint8Array) => Promise<unknown>
  /** Known releases with their digests and wire bytes (the daemon's message store). */
  releases: () => HeldRelease[]
  highestSeq: (model: string) => number
  /** The operator's durable seq counter (seed/seq-authority.ts). */
  seqs?: SeqAuthority
  /** Counts refused publishes by code (`llmesh_publish_refusals_total`, seed/publish-metrics.ts). */
  metrics?: PublishMetrics
  logger: Logger
  maxUploadBytes?: number
}

/** Builds the plugin. */
export function releaseRoutes(deps: ReleaseRoutesDeps): FastifyPluginAsync {
  const max = deps.maxUploadBytes ?? MAX_UPLOAD_BYTES
  let chain: Promise<unknown> = Promise.resolve()
  const known = (): KnownRelease[] =>
    deps.releases().map(({ manifest: m }) => ({ model: m.model, version: m.version, seq: m.seq }))
  const find = (model: string, version: string) =>
    deps.releases().find((r) => r.manifest.model === model && r.manifest.version === version)

  return async (app) => {
    app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload))

    app.post<{ Querystring: PublishQuery }>('/releases', async (req, reply) => {
      const upload = join(deps.uploadDir, `upload-${randomBytes(8).toString('hex')}.gguf`)
      const name = uploadName(req.headers['x-llmesh-filename'])
      let status: number
      let body: unknown
      try {
        // everything the request alone decides, before a byte of the body is read
        const request = parsePublishRequest(req.query, req.headers)
        const { downgradeFrom } = checkVersion(request.model, request.version, known(), request.allowDowngrade)
        preflightManifest(request, {
          fleet: deps.fleet,
          seq: deps.seqs?.next(request.model, deps.highestSeq(request.model)) ?? deps.highestSeq(request.model) + 1,
          now: Date.now(),
          downgradeFrom,
        })
        await mkdir(deps.uploadDir, { recursive: true })
        await spoolUpload(req.body as NodeJS.ReadableStream, upload, { maxBytes: max, name })
        const result = chain
          .catch(() => {})
          .then(() =>
            publishRelease(
              { ...request, file: upload, displayName: name },
              {
                store: deps.store,
                signer: deps.signer,
                fleet: deps.fleet,
                highestSeq: deps.highestSeq,
                known,
                seqs: deps.seqs,
              },
            ).then(async (r) => {
              await deps.publish(r.wire)
              return r
            }),
          )
        chain = result
        const r = await result
        deps.logger.info(
          { model: r.manifest.model, version: r.manifest.version, seq: r.manifest.seq, new_bytes: r.newBytes },
          r.manifest.downgrade ? 'release published (downgrade)' : 'release published',
        )
        status = 201
        const out: PublishResponse = {
          manifest: r.manifest,
          digest: r.digest,
          new_chunks: r.newChunks,
          new_bytes: r.newBytes,
        }
        body = out
      } catch (err) {
        const e = errorReply(err)
        deps.metrics?.refused(e.body.error.code)
        if (e.status === 500) deps.logger.error({ err }, 'publish failed')
        else deps.logger.info({ code: e.body.error.code, reason: e.body.error.message }, 'publish refused')
        status = e.status
        body = e.body
      }
      // the spool file is gone before the client hears back
      await rm(upload, { force: true })
      return reply.code(status).send(body)
    })

    app.get(
      '/releases',
      async (): Promise<ReleaseListResponse> => ({
        releases: deps.releases().map(
          ({ manifest: m, digest }): ReleaseRow => ({
            model: m.model,
            version: m.version,
            seq: m.seq,
            size: m.file.size,
            sha256: m.file.sha256,
            chunks: m.chunks.chunks.length,
            created_at: m.created_at,
            expires_at: m.expires_at,
            digest,
            ...(m.downgrade ? { downgrade_from: m.downgrade.from } : {}),
          }),
        ),
      }),
    )

    app.get<{ Params: { model: string; version: string } }>('/releases/:model/:version', async (req, reply) => {
      const hit = find(req.params.model, req.params.version)
      if (!hit) return sendError(reply, 'ERR_NOT_FOUND', `no release ${req.params.model}@${req.params.version}`)
      const out: ReleaseResponse = { manifest: hit.manifest, digest: hit.digest }
      return out
    })

    app.get<{ Params: { model: string; version: string } }>('/releases/:model/:version/bundle', async (req, reply) => {
      const hit = find(req.params.model, req.params.version)
      if (!hit) return sendError(reply, 'ERR_NOT_FOUND', `no release ${req.params.model}@${req.params.version}`)
      return reply
        .header('content-type', 'application/json')
        .header('x-llmesh-digest', hit.digest)
        .send(Buffer.from(hit.bytes))
    })
  }
}
