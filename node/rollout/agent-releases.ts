/**
 * Agent releases (llmesh updating itself) in the rollout: each `AgentRelease` becomes the release
 * `llmesh-agent@<version>` with its own policy and `created_at`, decided by the very `decide` model
 * releases go through (cohorts, gates, verdicts, commands, aborts: protocols/rollout). The gates
 * read `llmesh-agent@<v>` from health reports through protocols/rollout/runs.ts. This module only
 * shapes the messages; node/rollout/decisions.ts decides them beside the model releases.
 */
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
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
 * One agent release per version, with its message digest: of several (a version published twice
 * past the seed's check) the lowest seq, then the smallest digest, counts on every node.
 */
export function resolveAgentReleases(
  list: Iterable<{ message: AgentRelease; digest: string }>,
): Array<{ manifest: RolloutSubject; release: AgentRelease; digest: string }> {
  const byVersion = new Map<string, { message: AgentRelease; digest: string }>()
  for (const r of list) {
    const had = byVersion.get(r.message.version)
    const better = had === undefined || r.message.seq < had.message.seq
    if (better || (r.message.seq === had.message.seq && r.digest < had.digest)) byVersion.set(r.message.version, r)
  }
  return [...byVersion.values()]
    .sort((a, b) => a.message.seq - b.message.seq)
    .map((r) => ({ manifest: agentSubject(r.message), release: r.message, digest: r.digest }))
}
