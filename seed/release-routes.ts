/**
 * Seed HTTP routes for releases (a fastify plugin):
 *
 *   POST /releases?model=&version=[&approved_by=a,b][&arch=x64,arm64][&runtime=][&min_ram_mb=][&ttl_days=]
 *        body: the GGUF file (application/octet-stream, streamed to disk)
 *        header `x-llmesh-policy`: base64 of a policy YAML (optional; default policy otherwise)
 *        → 201 { manifest, digest, new_chunks, new_bytes }   | 4xx { error: { code, message } } (node/api/errors.ts)
 *   GET  /releases                   → { releases: [{ model, version, seq, size, sha256, chunks, created_at, expires_at, digest }] }
 *   GET  /releases/:model/:version   → { manifest, digest }
 *
 * Publishes run one at a time (each takes the next per-model seq).
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { FastifyPluginAsync } from 'fastify'
import { errorReply, sendError } from '../node/api/errors.ts'
import type { Logger } from '../node/logger.ts'
import type { ModelStore } from '../node/store/model-store.ts'
import { InvalidInputError, LlmeshError } from '../protocols/errors.ts'
import { parsePolicyYaml } from '../protocols/rollout/policy-yaml.ts'
import { CpuArch, type ReleaseManifest } from '../protocols/schemas/index.ts'
import type { OperatorSigner } from '../protocols/signing/index.ts'
import { MAX_UPLOAD_BYTES } from './constants.ts'
import { publishRelease } from './publish.ts'

/** What the routes use. */
export interface ReleaseRoutesDeps {
  store: ModelStore
  signer: OperatorSigner
  fleet: string
  /** Where uploads are spooled (deleted once chunked into the feed). */
  uploadDir: string
  /** Verifies, stores and gossips signed wire bytes (the daemon's `ctx.publish`). */
  publish: (wire: Uint8Array) => Promise<unknown>
  /** Known releases with their digests (the daemon's message store). */
  releases: () => Array<{ manifest: ReleaseManifest; digest: string }>
  highestSeq: (model: string) => number
  logger: Logger
  maxUploadBytes?: number
}

interface PublishQuery {
  model?: string
  version?: string
  approved_by?: string
  arch?: string
  runtime?: string
  min_ram_mb?: string
  ttl_days?: string
}

function list(s: string | undefined): string[] | undefined {
  const v = s
    ?.split(',')
    .map((x) => x.trim())
    .filter(Boolean)
  return v && v.length > 0 ? v : undefined
}

/** Builds the plugin. */
export function releaseRoutes(deps: ReleaseRoutesDeps): FastifyPluginAsync {
  const max = deps.maxUploadBytes ?? MAX_UPLOAD_BYTES
  let chain: Promise<unknown> = Promise.resolve()
  return async (app) => {
    app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload))

    app.post<{ Querystring: PublishQuery }>('/releases', async (req, reply) => {
      const q = req.query
      const upload = join(deps.uploadDir, `upload-${randomBytes(8).toString('hex')}.gguf`)
      try {
        if (!q.model || !q.version) throw new InvalidInputError('model and version are required')
        const arch = list(q.arch)
        if (arch)
          for (const a of arch)
            if (!CpuArch.safeParse(a).success) throw new InvalidInputError(`unknown architecture ${a}`)
        const policyHeader = req.headers['x-llmesh-policy']
        const policy =
          typeof policyHeader === 'string' && policyHeader.length > 0
            ? parsePolicyYaml(Buffer.from(policyHeader, 'base64').toString('utf8'), {
                filename: String(req.headers['x-llmesh-policy-name'] ?? 'policy.yaml'),
              })
            : undefined
        await mkdir(deps.uploadDir, { recursive: true })
        let bytes = 0
        const limit = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            bytes += chunk.byteLength
            if (bytes > max) cb(new LlmeshError('ERR_UPLOAD_TOO_LARGE', `upload exceeds ${max} bytes`))
            else cb(null, chunk)
          },
        })
        await pipeline(req.body as NodeJS.ReadableStream, limit, createWriteStream(upload))
        const result = chain
          .catch(() => {})
          .then(() =>
            publishRelease(
              {
                file: upload,
                model: q.model as string,
                version: q.version as string,
                policy,
                approvedBy: list(q.approved_by),
                architectures: arch as ReleaseManifest['architectures'] | undefined,
                runtime: q.runtime,
                minRamMb: q.min_ram_mb ? Number(q.min_ram_mb) : undefined,
                ttlMs: q.ttl_days ? Number(q.ttl_days) * 86_400_000 : undefined,
              },
              { store: deps.store, signer: deps.signer, fleet: deps.fleet, highestSeq: deps.highestSeq },
            ).then(async (r) => {
              await deps.publish(r.wire)
              return r
            }),
          )
        chain = result
        const r = await result
        deps.logger.info(
          { model: r.manifest.model, version: r.manifest.version, seq: r.manifest.seq, new_bytes: r.newBytes },
          'release published',
        )
        return reply
          .code(201)
          .send({ manifest: r.manifest, digest: r.digest, new_chunks: r.newChunks, new_bytes: r.newBytes })
      } catch (err) {
        const { status, body, log } = errorReply(err)
        if (log) deps.logger.error({ err }, 'publish failed')
        return reply.code(status).send(body)
      } finally {
        await rm(upload, { force: true })
      }
    })

    app.get('/releases', async () => ({
      releases: deps.releases().map(({ manifest: m, digest }) => ({
        model: m.model,
        version: m.version,
        seq: m.seq,
        size: m.file.size,
        sha256: m.file.sha256,
        chunks: m.chunks.chunks.length,
        created_at: m.created_at,
        expires_at: m.expires_at,
        digest,
      })),
    }))

    app.get<{ Params: { model: string; version: string } }>('/releases/:model/:version', async (req, reply) => {
      const hit = deps
        .releases()
        .find((r) => r.manifest.model === req.params.model && r.manifest.version === req.params.version)
      if (!hit) return sendError(reply, 'ERR_NOT_FOUND', `no release ${req.params.model}@${req.params.version}`)
      return { manifest: hit.manifest, digest: hit.digest }
    })
  }
}
