/**
 * Publishing an agent release on the seed (`POST /agent-releases`, `llmesh release publish-agent`).
 * The same path as a model release: every check first (version duplicate/downgrade with the very
 * rule models use, `checkVersion` under the name `llmesh-agent`; the manifest schema with a
 * placeholder chunk index; `min_agent_version`/`min_from` not above the version; the package
 * starts as gzip), then the package is chunked into its architecture's lineage feed
 * (`llmesh-agent-<arch>`), the manifest built and signed by the operator key as a Sigstore bundle.
 * The seq comes from the operator's sequence authority (seed/seq-authority.ts, key `llmesh-agent`),
 * reserved durably before signing, as for model releases; without one, the highest agent seq + 1.
 * One package per publish, or several architectures in one release: each package is staged
 * first (`stageAgentPackage`: checked and chunked, nothing signed), then `publishStagedAgentRelease`
 * signs one manifest naming them all.
 */

import type { AppendResult } from '../node/store/lineage-append.ts'
import type { ModelStore } from '../node/store/model-store.ts'
import { AGENT_LINEAGE, agentLineage } from '../protocols/agent/constants.ts'
import { compatFloor } from '../protocols/agent/fallback.ts'
import { agentReleaseProblems } from '../protocols/agent/upgrade.ts'
import { SCHEMA_VERSION } from '../protocols/constants.ts'
import { InvalidInputError } from '../protocols/errors.ts'
import { DEFAULT_POLICY } from '../protocols/rollout/policy-defaults.ts'
import { type AgentPackage, AgentRelease, type PackageArch, type RolloutPolicy } from '../protocols/schemas/index.ts'
import { type OperatorSigner, signOperatorMessage } from '../protocols/signing/index.ts'
import { messageIdOfWire } from '../protocols/signing/message-id.ts'
import { RELEASE_TTL_MS } from './constants.ts'
import { checkVersion, type KnownRelease, PLACEHOLDER_APPEND } from './release-checks.ts'
import type { SeqAuthority } from './seq-authority.ts'

/** The operator's part of an agent release: everything but the package bytes. */
export interface AgentRequest {
  version: string
  arch: PackageArch
  /** The package's file name (`llmesh-<v>-linux-<arch>.tar.gz`). */
  name: string
  /** Default: the first version of its compatibility line (`compatFloor`, protocols/agent/fallback.ts). */
  minAgentVersion?: string
  minFrom?: string
  policy?: RolloutPolicy
  approvedBy?: string[]
  ttlMs?: number
  allowDowngrade?: boolean
}

/** What publishing uses. */
export interface AgentPublishComponents {
  store: ModelStore
  signer: OperatorSigner
  fleet: string
  /** Agent releases already known (the daemon's message store). */
  known: () => ReadonlyArray<{ version: string; seq: number }>
  /** The operator's durable seq counter (absent: the highest known seq + 1). */
  seqs?: SeqAuthority
}

/** A package chunked into its lineage feed, not yet in a signed release. */
export interface StagedAgentPackage {
  package: AgentPackage
  newChunks: number
  newBytes: number
}

/** A signed agent release. */
export interface AgentPublishResult {
  release: AgentRelease
  wire: Uint8Array
  digest: string
  newChunks: number
  newBytes: number
}

/** Refuses the request before any byte is read (InvalidInputError, VersionExistsError, DowngradeError). */
export function preflightAgent(
  req: AgentRequest,
  c: Pick<AgentPublishComponents, 'fleet' | 'known' | 'seqs'>,
  now: number,
  packages: AgentPackage[] = [packageOf(req, PLACEHOLDER_APPEND)],
): { seq: number; downgradeFrom?: string } {
  const known: KnownRelease[] = c.known().map((r) => ({ model: AGENT_LINEAGE, version: r.version, seq: r.seq }))
  const { downgradeFrom } = checkVersion(AGENT_LINEAGE, req.version, known, req.allowDowngrade)
  const highest = Math.max(0, ...known.map((r) => r.seq))
  const seq = c.seqs?.next(AGENT_LINEAGE, highest) ?? highest + 1
  if (req.ttlMs !== undefined && !(Number.isFinite(req.ttlMs) && req.ttlMs > 0))
    throw new InvalidInputError('ttl must be a positive number of days')
  buildAgentRelease(req, { fleet: c.fleet, seq, now, downgradeFrom, packages })
  return { seq, downgradeFrom }
}

/** The package entry of `req`'s file once appended. */
export function packageOf(req: Pick<AgentRequest, 'arch' | 'name'>, append: AppendResult): AgentPackage {
  return { arch: req.arch, name: req.name, size: append.size, sha256: append.sha256, chunks: append.chunks }
}

/** Builds the schema-checked manifest; throws InvalidInputError naming the first bad field. */
export function buildAgentRelease(
  req: AgentRequest,
  ctx: { fleet: string; seq: number; now: number; downgradeFrom?: string; packages: AgentPackage[] },
): AgentRelease {
  const parsed = AgentRelease.safeParse({
    type: 'AgentRelease',
    v: SCHEMA_VERSION,
    fleet: ctx.fleet,
    version: req.version,
    seq: ctx.seq,
    packages: ctx.packages,
    min_agent_version: req.minAgentVersion ?? compatFloor(req.version),
    ...(req.minFrom !== undefined ? { min_from: req.minFrom } : {}),
    policy: req.policy ?? DEFAULT_POLICY,
    provenance: { approved_by: req.approvedBy ?? [] },
    created_at: ctx.now,
    expires_at: ctx.now + (req.ttlMs ?? RELEASE_TTL_MS),
    ...(ctx.downgradeFrom !== undefined ? { downgrade: { from: ctx.downgradeFrom } } : {}),
  })
  if (!parsed.success) {
    const i = parsed.error.issues[0]
    throw new InvalidInputError(`agent release is invalid: ${i?.path.map(String).join('.') || '(root)'}: ${i?.message}`)
  }
  const problems = agentReleaseProblems(parsed.data)
  if (problems.length > 0) throw new InvalidInputError(`agent release is invalid: ${problems.join('; ')}`)
  return parsed.data
}

/** Refuses a package that does not start as gzip (the first bytes of the upload). */
export function checkGzipStart(head: Uint8Array, name: string): void {
  if (head.byteLength < 2 || head[0] !== 0x1f || head[1] !== 0x8b)
    throw new InvalidInputError(`${name}: not a gzip-compressed tar package`)
}

/** Checks, chunks the package at `file` into its lineage feed, builds and signs the release. */
export async function publishAgentRelease(
  req: AgentRequest,
  file: string,
  c: AgentPublishComponents,
  now = Date.now(),
): Promise<AgentPublishResult> {
  const staged = await stageAgentPackage(req, file, c, now)
  const out = await publishStagedAgentRelease(req, [staged.package], c, now)
  return { ...out, newChunks: staged.newChunks, newBytes: staged.newBytes }
}

/** Checks the request and chunks the package at `file` into its lineage feed; signs nothing. */
export async function stageAgentPackage(
  req: AgentRequest,
  file: string,
  c: AgentPublishComponents,
  now = Date.now(),
): Promise<StagedAgentPackage> {
  preflightAgent(req, c, now)
  const append = await c.store.appendFile(agentLineage(req.arch), file)
  return { package: packageOf(req, append), newChunks: append.newChunks, newBytes: append.newBytes }
}

/** Builds one release naming `packages` (one per architecture), reserves its seq, signs it. */
export async function publishStagedAgentRelease(
  req: AgentRequest,
  packages: AgentPackage[],
  c: AgentPublishComponents,
  now = Date.now(),
): Promise<AgentPublishResult> {
  const { seq, downgradeFrom } = preflightAgent(req, c, now, packages)
  const release = buildAgentRelease(req, { fleet: c.fleet, seq, now, downgradeFrom, packages })
  await c.seqs?.reserve(AGENT_LINEAGE, seq)
  const wire = await signOperatorMessage(release, c.signer)
  return { release, wire, digest: messageIdOfWire(wire), newChunks: 0, newBytes: 0 }
}
