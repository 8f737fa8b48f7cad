/**
 * Agent releases (llmesh updating itself) in the rollout: each `AgentRelease` becomes the release
 * `llmesh-agent@<version>` with its own policy and `created_at`, decided by the very `decide` model
 * releases go through (cohorts, gates, verdicts, commands, aborts: protocols/rollout). The gates
 * read `llmesh-agent@<v>` from health reports through protocols/rollout/runs.ts. This module only
 * shapes the messages; node/rollout/decisions.ts decides them beside the model releases.
 *
 * Several agent releases for one version, or one seq for two versions, are resolved by the rule of
 * model manifests (`resolveSubjects`, protocols/rollout/conflicts.ts), from the set alone: the same
 * packages twice are a duplicate (the lowest seq counts); other packages under one version, or two
 * versions under one seq, make every version involved `conflicted`, refused on every node.
 */
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import { canonicalBytes, sha256Hex } from '../../protocols/encoding.ts'
import { type FileIdentity, type ReleaseConflict, resolveSubjects } from '../../protocols/rollout/conflicts.ts'
import type { AgentRelease } from '../../protocols/schemas/index.ts'
import type { RolloutSubject } from './plan.ts'

/** An agent release as the rollout sees it: the release `llmesh-agent@<version>`. */
export function agentSubject(r: AgentRelease): RolloutSubject {
  const out: RolloutSubject = {
    model: AGENT_LINEAGE,
    version: r.version,
    seq: r.seq,
    policy: r.policy,
    created_at: r.created_at,
  }
  if (r.downgrade !== undefined) out.downgrade = r.downgrade
  return out
}

/**
 * The bytes an agent release names, as one file identity: the sha256 of the canonical list of its
 * packages (`[arch, sha256, size]` by architecture) and their total size.
 */
export function agentFileIdentity(r: Pick<AgentRelease, 'packages'>): FileIdentity {
  const list = r.packages.map((p) => [p.arch, p.sha256, p.size] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1))
  return { sha256: sha256Hex(canonicalBytes(list)), size: r.packages.reduce((n, p) => n + p.size, 0) }
}

/** The agent releases that may roll out (one per version, by seq), and the versions in conflict. */
export interface AgentResolution {
  releases: Array<{ manifest: RolloutSubject; release: AgentRelease; digest: string }>
  conflicts: ReleaseConflict[]
}

/** Resolves the agent releases held (see the header). Deterministic: depends only on the set. */
export function resolveAgentReleases(list: Iterable<{ message: AgentRelease; digest: string }>): AgentResolution {
  const signed = [...list].map(({ message, digest }) => ({ manifest: { ...agentSubject(message), message }, digest }))
  const out = resolveSubjects(signed, (m) => agentFileIdentity(m.message))
  return {
    releases: out.releases.map(({ manifest: { message, ...manifest }, digest }) => ({
      manifest,
      release: message,
      digest,
    })),
    conflicts: out.conflicts,
  }
}
