/**
 * Whether a device takes an agent release. Pure: the device passes its architecture, its running
 * agent version and (when it has it) the release it runs. The rules, in order (docs/protocol.md,
 * "Agent releases"):
 * 1. architecture: the device takes only the package built for its own `process.arch`; a release
 *    without one is `not-mine` (ignored, not a failure);
 * 2. same version as the running one: `current` (nothing to do);
 * 3. required step: a running version below the release's `min_from` is refused
 *    (`ERR_AGENT_STEP`): an intermediate release must be installed first;
 * 4. downgrade: a version below the running one (semver precedence, protocols/version.ts, the
 *    rule model releases follow) is taken only when the operator published it as a downgrade
 *    (`downgrade` present, set by the seed's duplicate/downgrade check) — else `ERR_AGENT_DOWNGRADE`;
 *    and never below the running release's `min_agent_version` (the older agent could not read the
 *    data the running one wrote): `ERR_AGENT_INCOMPATIBLE`. Going back from a running version the
 *    fleet refuses (`runningAborted`: aborted or conflicted) to an admitted older release it does
 *    not hold is taken like a published downgrade, under the same `min_agent_version` floor (the
 *    versions it holds come first: fallback.ts).
 * Duplicates never reach this rule: the seed refuses a version published twice, and the rollout
 * resolves several releases of one version or one seq first (node/rollout/agent-releases.ts: a
 * duplicate counts once, a conflicted version is never admitted).
 */
import type { AgentPackage, AgentRelease } from '../schemas/agent-release.ts'
import { compareVersions } from '../version.ts'

/** Why a device refuses an agent release (stable codes). */
export type AgentRefusal = 'ERR_AGENT_STEP' | 'ERR_AGENT_DOWNGRADE' | 'ERR_AGENT_INCOMPATIBLE'

/** What the device decides about one agent release. */
export type AgentDecision =
  | { action: 'install'; pkg: AgentPackage }
  | { action: 'current' }
  | { action: 'not-mine'; reason: string }
  | { action: 'refuse'; code: AgentRefusal; reason: string }

/** What the device knows about itself. */
export interface AgentSelf {
  /** `process.arch`. */
  arch: string
  /** The agent version running now. */
  running: string
  /** The `min_agent_version` of the release it runs, when it was installed from one. */
  runningMinAgent?: string
  /** The fleet refuses the running version's release: aborted or conflicted (going back below it is its rollback). */
  runningAborted?: boolean
}

/** The package of `arch`, if the release has one. */
export function agentPackageFor(release: AgentRelease, arch: string): AgentPackage | undefined {
  return release.packages.find((p) => p.arch === arch)
}

/** Applies the rules above. */
export function checkAgentUpgrade(release: AgentRelease, self: AgentSelf): AgentDecision {
  const pkg = agentPackageFor(release, self.arch)
  if (pkg === undefined) {
    const archs = release.packages.map((p) => p.arch).join(', ')
    return { action: 'not-mine', reason: `agent ${release.version} has no ${self.arch} package (only ${archs})` }
  }
  const order = compareVersions(release.version, self.running)
  if (release.version === self.running) return { action: 'current' }
  if (release.min_from !== undefined && compareVersions(self.running, release.min_from) < 0) {
    return {
      action: 'refuse',
      code: 'ERR_AGENT_STEP',
      reason: `agent ${release.version} needs ${release.min_from} or later running first (this device runs ${self.running})`,
    }
  }
  if (order < 0) {
    if (release.downgrade === undefined && self.runningAborted !== true) {
      return {
        action: 'refuse',
        code: 'ERR_AGENT_DOWNGRADE',
        reason: `agent ${release.version} is below the running ${self.running} and was not published as a downgrade`,
      }
    }
    if (self.runningMinAgent !== undefined && compareVersions(release.version, self.runningMinAgent) < 0) {
      return {
        action: 'refuse',
        code: 'ERR_AGENT_INCOMPATIBLE',
        reason: `agent ${release.version} cannot read what the running ${self.running} wrote (needs ${self.runningMinAgent} or later)`,
      }
    }
  }
  return { action: 'install', pkg }
}

/**
 * Problems of a release the publisher builds (empty when fine): `min_agent_version` and
 * `min_from` must not be above the version itself.
 */
export function agentReleaseProblems(r: Pick<AgentRelease, 'version' | 'min_agent_version' | 'min_from'>): string[] {
  const out: string[] = []
  if (compareVersions(r.min_agent_version, r.version) > 0) out.push('min_agent_version is above the version')
  if (r.min_from !== undefined && compareVersions(r.min_from, r.version) > 0) out.push('min_from is above the version')
  return out
}
