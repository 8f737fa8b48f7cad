/**
 * Two valid manifests for one model@version (a second seed, an old backup of the operator key, a
 * seed that let a version be published twice): which one a node rolls out, decided per release
 * from the set of manifests alone, so every node reaches the same outcome whatever order they
 * arrived in, and a release's outcome never depends on another release.
 *
 * How it works, per `model@version` (manifests deduplicated by digest):
 * - one manifest: it is the release (`single`).
 * - several, all for the same file (same sha256 and size): the same bytes were published twice.
 *   The one with the lowest `seq`, then the smallest digest, is the release; the others are
 *   ignored (`duplicate`). Devices that already run the version keep running it: the bytes are
 *   the ones they verified.
 * - several naming different files: the version means two different builds, so no device can
 *   know which bytes another runs, and health reports (which name `model@version`) would mix the
 *   figures of both. The version is `conflicted`: refused everywhere, as if aborted (devices go
 *   back to the previous version, or deactivate the model). The operator publishes the intended
 *   bytes again under a new, higher version.
 * And per `(model, seq)`: a seq names one release of a model. Two valid manifests with one model
 * and seq naming different versions (two operator nodes allocating seq while apart, or a seed
 * restored from a backup) make every version involved `conflicted` (reason `seq`): otherwise the
 * node that received one first would refuse the other as a rollback and the fleet would split
 * along arrival order.
 * The same rule serves agent releases (node/rollout/agent-releases.ts): `resolveSubjects` takes any
 * signed subject with a model, version, seq and file identity (an agent release's is its packages).
 * Pure: no clock, no I/O.
 */
import { LlmeshError } from '../errors.ts'
import type { ReleaseManifest } from '../schemas/index.ts'
import type { RolloutState } from './state.ts'

/** Stable code of a conflicted release (two valid manifests name different files). */
export const ERR_RELEASE_CONFLICT = 'ERR_RELEASE_CONFLICT'

/** A release that cannot be rolled out: two valid manifests for it name different files. */
export class ReleaseConflictError extends LlmeshError {
  constructor(release: string, digests: readonly string[], seqSharedWith?: readonly string[]) {
    super(
      ERR_RELEASE_CONFLICT,
      seqSharedWith !== undefined && seqSharedWith.length > 0
        ? `${release} shares its seq with version ${seqSharedWith.join(', ')} of the same model (two operator nodes allocated one seq): both refused on every node; publish the intended file as a new, higher version`
        : `${release} has ${digests.length} valid manifests for different files (${digests.map((d) => d.slice(0, 12)).join(', ')}): refused on every node; publish the intended file as a new version`,
    )
    this.name = 'ReleaseConflictError'
  }
}

/** What the rule reads of a release: its name, seq and creation time. */
export type ConflictSubject = Pick<ReleaseManifest, 'model' | 'version' | 'seq' | 'created_at'>

/** A verified release message (a model manifest, or another subject) and the digest of its message. */
export interface Signed<M extends ConflictSubject> {
  manifest: M
  digest: string
}

/** A verified manifest and the digest of its message. */
export type SignedRelease = Signed<ReleaseManifest>

/** The bytes a release names: two manifests of one version are duplicates when these are equal. */
export interface FileIdentity {
  sha256: string
  size: number
}

/** One manifest of a release with several, as status shows it. */
export interface ConflictManifest {
  digest: string
  seq: number
  sha256: string
  size: number
  created_at: number
}

/** A release with more than one valid manifest, and what every node makes of it. */
export interface ReleaseConflict {
  model: string
  version: string
  /** `duplicate`: same file, `chosen` counts and the others are ignored; `conflicted`: refused. */
  outcome: 'duplicate' | 'conflicted'
  /**
   * Why it is conflicted: `file` (manifests of this version name different files) or `seq` (a seq
   * of this version is also the seq of another version of the model, listed in `seq_shared_with`).
   */
  reason?: 'file' | 'seq'
  /** Other versions of the model that share a seq with this one (reason `seq`), sorted. */
  seq_shared_with?: string[]
  /** The digest of the manifest that counts (duplicates only). */
  chosen?: string
  /** Every manifest of the release, by (seq, digest). */
  manifests: ConflictManifest[]
}

/** What a node rolls out. */
export interface ReleaseResolution<M extends ConflictSubject = ReleaseManifest> {
  /** One manifest per release that may roll out (singles and the chosen duplicates), by model then seq. */
  releases: Signed<M>[]
  /** Releases with several manifests, by model then version. */
  conflicts: ReleaseConflict[]
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
const bySeqDigest = (a: Signed<ConflictSubject>, b: Signed<ConflictSubject>): number =>
  a.manifest.seq - b.manifest.seq || byText(a.digest, b.digest)

/** `model@version`. */
function keyOf(m: Pick<ReleaseManifest, 'model' | 'version'>): string {
  return `${m.model}@${m.version}`
}

/** Resolves every release from the set of valid manifests. Deterministic: depends only on the set. */
export function resolveReleases(list: Iterable<SignedRelease>): ReleaseResolution {
  return resolveSubjects(list, (m) => m.file)
}

/**
 * The rule above for any release subject whose bytes `fileOf` names (model manifests: `file`;
 * agent releases: their packages). Deterministic: depends only on the set.
 */
export function resolveSubjects<M extends ConflictSubject>(
  list: Iterable<Signed<M>>,
  fileOf: (m: M) => FileIdentity,
): ReleaseResolution<M> {
  const byKey = new Map<string, Map<string, Signed<M>>>()
  for (const r of list) {
    const k = keyOf(r.manifest)
    const group = byKey.get(k) ?? new Map<string, Signed<M>>()
    group.set(r.digest, r)
    byKey.set(k, group)
  }
  const sharedSeq = versionsSharingSeq(byKey.values())
  const releases: Signed<M>[] = []
  const conflicts: ReleaseConflict[] = []
  for (const group of byKey.values()) {
    const all = [...group.values()].sort(bySeqDigest)
    const first = all[0]
    const shared = sharedSeq.get(keyOf(first.manifest))
    if (all.length === 1 && shared === undefined) {
      releases.push(first)
      continue
    }
    const file = fileOf(first.manifest)
    const sameFile = all.every((r) => {
      const f = fileOf(r.manifest)
      return f.sha256 === file.sha256 && f.size === file.size
    })
    const c: ReleaseConflict = {
      model: first.manifest.model,
      version: first.manifest.version,
      outcome: sameFile && shared === undefined ? 'duplicate' : 'conflicted',
      manifests: all.map((r) => {
        const f = fileOf(r.manifest)
        return {
          digest: r.digest,
          seq: r.manifest.seq,
          sha256: f.sha256,
          size: f.size,
          created_at: r.manifest.created_at,
        }
      }),
    }
    if (!sameFile) c.reason = 'file'
    else if (shared !== undefined) c.reason = 'seq'
    if (shared !== undefined) c.seq_shared_with = [...shared].sort(byText)
    if (c.outcome === 'duplicate') {
      c.chosen = first.digest
      releases.push(first)
    }
    conflicts.push(c)
  }
  releases.sort((a, b) => byText(a.manifest.model, b.manifest.model) || bySeqDigest(a, b))
  conflicts.sort((a, b) => byText(a.model, b.model) || byText(a.version, b.version))
  return { releases, conflicts }
}

/**
 * For every model@version one of whose seqs is also a seq of another version of the model: the
 * versions it shares a seq with (by model@version, whose versions are returned).
 */
function versionsSharingSeq(groups: Iterable<Map<string, Signed<ConflictSubject>>>): Map<string, Set<string>> {
  const bySeq = new Map<string, Set<string>>()
  for (const group of groups) {
    for (const r of group.values()) {
      const k = `${r.manifest.model}\0${r.manifest.seq}`
      const versions = bySeq.get(k) ?? new Set<string>()
      versions.add(r.manifest.version)
      bySeq.set(k, versions)
    }
  }
  const out = new Map<string, Set<string>>()
  for (const [k, versions] of bySeq) {
    if (versions.size < 2) continue
    const model = k.slice(0, k.indexOf('\0'))
    for (const v of versions) {
      const others = out.get(`${model}@${v}`) ?? new Set<string>()
      for (const o of versions) if (o !== v) others.add(o)
      out.set(`${model}@${v}`, others)
    }
  }
  return out
}

/** The error of a conflicted release (for status and the error counters). */
export function conflictError(c: ReleaseConflict): ReleaseConflictError {
  return new ReleaseConflictError(
    `${c.model}@${c.version}`,
    c.manifests.map((m) => m.digest),
    c.seq_shared_with,
  )
}

/**
 * A persisted rollout state if it belongs to this manifest (same release, stages and start), else
 * undefined: facts kept for another manifest of the same model@version (one that lost the pick
 * after the winner arrived) cannot be joined with this one's and are re-derived from the store.
 */
export function stateForManifest(
  state: RolloutState | undefined,
  m: Pick<ReleaseManifest, 'model' | 'version' | 'created_at' | 'policy'>,
): RolloutState | undefined {
  if (state === undefined) return undefined
  const stages = m.policy.stages.map((s) => s.name)
  const same =
    state.release === keyOf(m) && state.releasedAt === m.created_at && state.stages.join('\n') === stages.join('\n')
  return same ? state : undefined
}
