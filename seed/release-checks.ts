/**
 * What the seed checks before it writes anything for a publish: the request itself (model name,
 * version, policy, runtime range, architectures, RAM, lifetime, approvers), whether the version
 * already exists, and whether it is a downgrade. Pure: the known releases are passed in.
 *
 * Version rule (protocols/version.ts): a model@version string is published once. Precedence is
 * semver's on core and prerelease; build metadata is not ordered. A version whose precedence is
 * below the model's highest is a downgrade, refused unless allowed, and then recorded in the
 * manifest (`downgrade.from`). Two builds of one core (`1.3.0+gguf-q4_0`, `1.3.0+gguf-q8_0`) are
 * distinct variants of equal precedence: publishing the second is neither a duplicate nor a
 * downgrade.
 */
import { checkModelName } from '../protocols/agent/reserved-names.ts'
import { InvalidInputError } from '../protocols/errors.ts'
import { DEFAULT_POLICY } from '../protocols/rollout/policy-defaults.ts'
import type { ProbeSet, ReleaseManifest, RolloutPolicy } from '../protocols/schemas/index.ts'
import { compareVersions, highestVersion, isVersion } from '../protocols/version.ts'
import { DowngradeError, VersionExistsError } from './errors.ts'
import { buildReleaseManifest, type ManifestInput } from './manifest.ts'

/** A release the seed already knows (its message store). */
export interface KnownRelease {
  model: string
  version: string
  seq: number
}

/** The operator's part of a release: everything but the file. */
export interface ReleaseRequest {
  model: string
  version: string
  /** Rollout policy (default `DEFAULT_POLICY`). */
  policy?: RolloutPolicy
  approvedBy?: string[]
  /** CPU architectures (default `['any']`). */
  architectures?: ReleaseManifest['architectures']
  /** node-llama-cpp semver range (default `DEFAULT_RUNTIME_RANGE`). */
  runtime?: string
  /** RAM the model needs, MiB (default 1.2 × file size). */
  minRamMb?: number
  /** Manifest lifetime, ms (default `RELEASE_TTL_MS`, 90 days). */
  ttlMs?: number
  baseModel?: string
  /** Publish even when the version is below the model's highest (recorded in the manifest). */
  allowDowngrade?: boolean
  /** Quality probes carried inline in the manifest (`--probes`). */
  probes?: ProbeSet
}

/** What the version checks decided. */
export interface VersionDecision {
  /** Set when this publish is an allowed downgrade: the model's highest version it goes below. */
  downgradeFrom?: string
}

/**
 * Refuses a duplicate (`VersionExistsError`) or an unallowed downgrade (`DowngradeError`).
 * `known` may hold other models' releases; they are ignored.
 */
export function checkVersion(
  model: string,
  version: string,
  known: readonly KnownRelease[],
  allowDowngrade = false,
): VersionDecision {
  if (!isVersion(version)) throw new InvalidInputError(`version ${JSON.stringify(version)} is not a semantic version`)
  const mine = known.filter((r) => r.model === model && isVersion(r.version))
  const same = mine.find((r) => r.version === version)
  if (same !== undefined) throw new VersionExistsError(model, version, same.seq)
  const highest = highestVersion(mine.map((r) => r.version))
  if (highest === undefined || compareVersions(version, highest) >= 0) return {}
  if (!allowDowngrade) throw new DowngradeError(model, version, highest)
  return { downgradeFrom: highest }
}

/** A placeholder chunk index: the preflight checks every field but the ones the feed fills in. */
export const PLACEHOLDER_APPEND: ManifestInput['append'] = {
  chunks: {
    feed: '0'.repeat(64),
    feed_length: 1,
    chunking: { algo: 'fastcdc', min: 1, avg: 1, max: 1 },
    chunks: [{ hash: '0'.repeat(64), block: 0, size: 1 }],
  },
  size: 1,
  sha256: '0'.repeat(64),
  newChunks: 0,
  newBytes: 0,
}

/**
 * Checks the whole request against the manifest schema before any byte is chunked, by building
 * the manifest with a placeholder chunk index. Throws ReservedNameError for a name agent releases
 * own, else InvalidInputError naming the first bad field.
 */
export function preflightManifest(
  req: ReleaseRequest,
  ctx: { fleet: string; seq: number; now: number; gguf?: ManifestInput['gguf']; downgradeFrom?: string },
): void {
  if (req.ttlMs !== undefined && !(Number.isFinite(req.ttlMs) && req.ttlMs > 0)) {
    throw new InvalidInputError('ttl must be a positive number of days')
  }
  // `llmesh-agent` names agent releases in the rollout, `llmesh-agent-<arch>` their package feeds
  checkModelName(req.model)
  if ((req.policy ?? DEFAULT_POLICY).gates.quality !== undefined && req.probes === undefined) {
    throw new InvalidInputError('the policy has a quality gate: publish the release with its probes (--probes <file>)')
  }
  try {
    buildReleaseManifest({
      ...manifestFields(req, ctx),
      append: PLACEHOLDER_APPEND,
      gguf: ctx.gguf ?? { quantization: 'unknown', architecture: 'unknown' },
    })
  } catch (err) {
    throw new InvalidInputError(`release manifest is invalid: ${issueText(err)}`, { cause: err })
  }
}

/** The manifest inputs that come from the request (everything but `append` and `gguf`). */
export function manifestFields(
  req: ReleaseRequest,
  ctx: { fleet: string; seq: number; now: number; downgradeFrom?: string },
): Omit<ManifestInput, 'append' | 'gguf'> {
  return {
    fleet: ctx.fleet,
    model: req.model,
    version: req.version,
    seq: ctx.seq,
    policy: req.policy ?? DEFAULT_POLICY,
    architectures: req.architectures,
    runtime: req.runtime,
    minRamMb: req.minRamMb,
    approvedBy: req.approvedBy,
    baseModel: req.baseModel,
    now: ctx.now,
    ttlMs: req.ttlMs,
    downgradeFrom: ctx.downgradeFrom,
    probes: req.probes,
  }
}

/** `field: reason` of the first zod issue (one line), else the message. */
function issueText(err: unknown): string {
  const issues = (err as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues
  if (Array.isArray(issues) && issues.length > 0) {
    const i = issues[0]
    return `${i.path.map(String).join('.') || '(root)'}: ${i.message}`
  }
  return (err as Error).message
}
