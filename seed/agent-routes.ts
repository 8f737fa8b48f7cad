/**
 * Seed HTTP routes for agent releases (a fastify plugin):
 *
 *   POST /agent-releases?version=[&arch=][&min_agent_version=][&min_from=][&approved_by=a,b][&ttl_days=][&allow_downgrade=1]
 *        body: the package (`llmesh-<v>-linux-<arch>.tar.gz`, streamed to disk)
 *        header `x-llmesh-filename`: the package's file name (its architecture when `arch` is absent)
 *        header `x-llmesh-policy`: base64 of a policy YAML (optional)
 *        → 201 { release, digest, new_chunks, new_bytes } | 400 | 409 ERR_VERSION_EXISTS / ERR_DOWNGRADE | 413
 *   Several architectures in one release (agent-staging.ts):
 *   POST /agent-releases?version=&stage=1[&arch=]  body: one package → 201 { staged: { token, package, new_chunks, new_bytes } }
 *        (checked and chunked, nothing signed), once per architecture, then
 *   POST /agent-releases?version=&packages=<token>,<token>[&…the fields above]  no body → 201 { release, … }
 *   GET  /agent-releases → { releases: [{ version, seq, archs, min_agent_version, min_from?, digest, created_at, state? }] }
 *        (`state`: the release's rollout state as this seed sees it: a stage, `promoted`, `aborted`, `conflicted`)
 *
 * As `POST /releases`: refused before the body is read when the request is wrong, before it is
 * written when it does not start as gzip; publishes run one at a time; every refusal (stagings
 * too) is counted in `llmesh_publish_refusals_total{code}` (seed/publish-metrics.ts).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import { errorReply } from '../node/api/errors.ts'
import type { Logger } from '../node/logger.ts'
import type { ModelStore } from '../node/store/model-store.ts'
import { InvalidInputError } from '../protocols/errors.ts'
import { parsePolicyYaml } from '../protocols/rollout/policy-yaml.ts'
import { type AgentPackage, type AgentRelease, PackageArch } from '../protocols/schemas/index.ts'
import type { OperatorSigner } from '../protocols/signing/index.ts'
import {
  type AgentRequest,
  checkGzipStart,
  preflightAgent,
  publishAgentRelease,
  publishStagedAgentRelease,
  stageAgentPackage,
} from './agent-publish.ts'
import { AgentStaging } from './agent-staging.ts'
import { MAX_UPLOAD_BYTES } from './constants.ts'
import type { PublishMetrics } from './publish-metrics.ts'
import { uploadName } from './publish-query.ts'
import type { SeqAuthority } from './seq-authority.ts'
import { spoolUpload } from './upload.ts'

/** Query of `POST /agent-releases`. */
export interface AgentPublishQuery {
  version?: string
  arch?: string
  min_agent_version?: string
  min_from?: string
  approved_by?: string
  ttl_days?: string
  allow_downgrade?: string
  /** `1`: chunk the package and keep it for a multi-architecture release; sign nothing. */
  stage?: string
  /** Staged package tokens (comma-separated): publish one release naming them, with no body. */
  packages?: string
}

/** One row of `GET /agent-releases`. */
export interface AgentReleaseRow {
  version: string
  seq: number
  archs: string[]
  min_agent_version: string
  min_from?: string
  digest: string
  created_at: number
  /** The rollout state of `llmesh-agent@<version>` here (a stage, `promoted`, `aborted`, `conflicted`), when known. */
  state?: string
}

/** The JSON of `POST /agent-releases` (201). */
export interface AgentPublishResponse {
  release: AgentRelease
  digest: string
  new_chunks: number
  new_bytes: number
}

/** The JSON of `POST /agent-releases?stage=1` (201): a package kept for a multi-architecture release. */
export interface AgentStagedResponse {
  staged: { token: string; package: AgentPackage; new_chunks: number; new_bytes: number }
}

/** What the routes use. */
export interface AgentRoutesDeps {
  store: ModelStore
  signer: OperatorSigner
  fleet: string
  uploadDir: string
  publish: (wire: Uint8Array) => Promise<unknown>
  /** Agent releases held (the daemon's message store). */
  releases: () => Array<{ release: AgentRelease; digest: string }>
  /** The operator's durable seq counter (seed/seq-authority.ts), shared with model releases. */
  seqs?: SeqAuthority
  /** The rollout state of an agent version (the node's status registry), for `GET /agent-releases`. */
  state?: (version: string) => string | undefined
  /** Counts refused publishes by code (`llmesh_publish_refusals_total`, shared with POST /releases). */
  metrics?: PublishMetrics
  logger: Logger
  maxUploadBytes?: number
}

const ARCH_IN_NAME = /-linux-(arm64|x64|arm|riscv64)\.tar\.gz$/

/** Parses the request (InvalidInputError on anything wrong). */
export function parseAgentRequest(q: AgentPublishQuery, name: string, policyHeader: unknown): AgentRequest {
  if (typeof q.version !== 'string' || q.version === '') throw new InvalidInputError('version is required')
  const arch = q.arch || ARCH_IN_NAME.exec(name)?.[1]
  const a = PackageArch.safeParse(arch)
  if (!a.success)
    throw new InvalidInputError(
      `architecture ${JSON.stringify(arch ?? null)?.slice(0, 32)}: give arch= (arm64, x64, arm, riscv64)`,
    )
  let policy: AgentRequest['policy']
  if (typeof policyHeader === 'string' && policyHeader.length > 0) {
    if (policyHeader.length > 96 * 1024) throw new InvalidInputError('policy is too large')
    policy = parsePolicyYaml(Buffer.from(policyHeader, 'base64').toString('utf8'), { filename: 'policy.yaml' })
  }
  const ttl = q.ttl_days === undefined || q.ttl_days === '' ? undefined : Number(q.ttl_days)
  if (ttl !== undefined && !(Number.isFinite(ttl) && ttl > 0)) throw new InvalidInputError('ttl_days must be positive')
  const allow = q.allow_downgrade
  if (allow !== undefined && !['', '0', '1', 'true', 'false'].includes(allow))
    throw new InvalidInputError('allow_downgrade must be true or false')
  return {
    version: q.version,
    arch: a.data,
    name,
    minAgentVersion: q.min_agent_version || undefined,
    minFrom: q.min_from || undefined,
    policy,
    approvedBy: q.approved_by?.split(',').filter(Boolean).slice(0, 16),
    ttlMs: ttl === undefined ? undefined : Math.round(ttl * 86_400_000),
    allowDowngrade: allow === '1' || allow === 'true',
  }
}

/** Builds the plugin. */
export function agentRoutes(deps: AgentRoutesDeps): FastifyPluginAsync {
  let chain: Promise<unknown> = Promise.resolve()
  const known = () => deps.releases().map(({ release: r }) => ({ version: r.version, seq: r.seq }))
  const c = { store: deps.store, signer: deps.signer, fleet: deps.fleet, known, seqs: deps.seqs }
  const staging = new AgentStaging()
  /** Runs publishes and stagings one at a time. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.catch(() => {}).then(fn)
    chain = run
    return run
  }
  return async (app) => {
    if (!app.hasContentTypeParser('application/octet-stream'))
      app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload))

    app.post<{ Querystring: AgentPublishQuery }>('/agent-releases', async (req, reply) => {
      const upload = join(deps.uploadDir, `agent-${randomBytes(8).toString('hex')}.tar.gz`)
      const name = uploadName(req.headers['x-llmesh-filename'], 'package.tar.gz')
      let status: number
      let body: unknown
      try {
        const q = req.query
        if (q.packages !== undefined) {
          // a release naming staged packages: no body
          const pkgs = staging.resolve(q.packages, q.version ?? '', Date.now())
          const request = parseAgentRequest({ ...q, arch: pkgs[0].arch }, pkgs[0].name, req.headers['x-llmesh-policy'])
          const r = await serial(async () => {
            const out = await publishStagedAgentRelease(request, pkgs, c)
            await deps.publish(out.wire)
            return out
          })
          staging.take(q.packages)
          deps.logger.info(
            { version: r.release.version, seq: r.release.seq, archs: pkgs.map((p) => p.arch) },
            'agent release published',
          )
          status = 201
          body = { release: r.release, digest: r.digest, new_chunks: 0, new_bytes: 0 }
        } else {
          const request = parseAgentRequest(q, name, req.headers['x-llmesh-policy'])
          preflightAgent(request, c, Date.now())
          await mkdir(deps.uploadDir, { recursive: true })
          await spoolUpload(req.body as NodeJS.ReadableStream, upload, {
            maxBytes: deps.maxUploadBytes ?? MAX_UPLOAD_BYTES,
            name,
            check: checkGzipStart,
          })
          if (q.stage === '1') {
            const st = await serial(() => stageAgentPackage(request, upload, c))
            const token = staging.add(request.version, st.package, Date.now())
            status = 201
            body = { staged: { token, package: st.package, new_chunks: st.newChunks, new_bytes: st.newBytes } }
          } else {
            const r = await serial(async () => {
              const out = await publishAgentRelease(request, upload, c)
              await deps.publish(out.wire)
              return out
            })
            deps.logger.info(
              { version: r.release.version, seq: r.release.seq, arch: request.arch },
              'agent release published',
            )
            status = 201
            body = { release: r.release, digest: r.digest, new_chunks: r.newChunks, new_bytes: r.newBytes }
          }
        }
      } catch (err) {
        const e = errorReply(err)
        deps.metrics?.refused(e.body.error.code)
        if (e.status === 500) deps.logger.error({ err }, 'agent publish failed')
        else deps.logger.info({ code: e.body.error.code, reason: e.body.error.message }, 'agent publish refused')
        status = e.status
        body = e.body
      }
      await rm(upload, { force: true })
      return reply.code(status).send(body)
    })

    const stateOf = (v: string) => {
      const state = deps.state?.(v)
      return state === undefined ? {} : { state }
    }
    app.get('/agent-releases', async () => ({
      releases: deps.releases().map(
        ({ release: r, digest }): AgentReleaseRow => ({
          version: r.version,
          seq: r.seq,
          archs: r.packages.map((p) => p.arch),
          min_agent_version: r.min_agent_version,
          ...(r.min_from !== undefined ? { min_from: r.min_from } : {}),
          digest,
          created_at: r.created_at,
          ...stateOf(r.version),
        }),
      ),
    }))
  }
}
