/**
 * Where a device goes when the fleet refuses the agent version it runs (aborted, or conflicted),
 * and the publish default of `min_agent_version`. Pure.
 *
 * The fleet rollback rule (docs/protocol.md, "Agent releases"): a device running a refused version
 * returns to the **newest version it holds** (installed side by side under its agent root, the
 * launcher present) that is
 * - below the running version (going forward is the rollout's business, never a fallback),
 * - not refused by the fleet itself, and not rolled back on this device before,
 * - at or above the running release's `min_agent_version` (an older agent could not read what the
 *   running one wrote). Unknown `min_agent_version` (no signed release of the running version):
 *   no version qualifies.
 * When none qualifies it stays on the refused version and says why (`ERR_AGENT_NO_FALLBACK`), which
 * the device shows in /status, its health reports and `llmesh_agent_stuck`.
 *
 * The publish default of `min_agent_version` is the first version of the release's semver
 * compatibility line (`compatFloor`): `M.0.0` for `M ≥ 1`, `0.m.0` for `0.m.x` with `m ≥ 1`,
 * and the version itself for `0.0.p` and for prereleases of a line's first version. Semver says
 * versions of one line are compatible, so by default a device can go back within the line; an
 * operator whose release writes data older agents cannot read says so with `--min-agent-version`.
 */
import { compareVersions, compareVersionsTotal, isVersion, parseVersion } from '../version.ts'

/** Stable code of a device that keeps a refused agent version: nothing to go back to. */
export const ERR_AGENT_NO_FALLBACK = 'ERR_AGENT_NO_FALLBACK'

/** What the device knows when the fleet refuses the version it runs. */
export interface FallbackInput {
  /** The agent version running (refused by the fleet). */
  running: string
  /** `min_agent_version` of the running version's signed release; undefined when unknown. */
  floor: string | undefined
  /** Versions installed under the agent root (any order, the running one included or not). */
  held: readonly string[]
  /** Whether the fleet refuses a version (aborted or conflicted). */
  refused: (version: string) => boolean
  /** Whether the wrapper rolled a version back on this device before. */
  failedHere: (version: string) => boolean
}

/** The decision. */
export type Fallback =
  | { action: 'return'; version: string }
  | { action: 'stay'; code: typeof ERR_AGENT_NO_FALLBACK; reason: string }

/** Most held versions named in a reason. */
const MAX_NAMED = 6
/** Longest reason (health reports carry it: `agent.stuck`). */
export const MAX_FALLBACK_REASON = 512

/** Applies the rule above. */
export function agentFallback(x: FallbackInput): Fallback {
  const why: string[] = []
  let best: string | undefined
  const held = [...new Set(x.held)].filter((v) => v !== x.running && isVersion(v)).sort(compareVersionsTotal)
  for (const v of held) {
    const no =
      compareVersions(v, x.running) >= 0
        ? 'not older'
        : x.refused(v)
          ? 'refused by the fleet'
          : x.failedHere(v)
            ? 'rolled back here'
            : x.floor === undefined || compareVersions(v, x.floor) < 0
              ? 'below min_agent_version'
              : undefined
    if (no === undefined) best = v
    else why.push(`${v}: ${no}`)
  }
  if (best !== undefined) return { action: 'return', version: best }
  const floor =
    x.floor === undefined
      ? `the min_agent_version of ${x.running} is unknown`
      : `it needs ${x.floor} or later (min_agent_version of ${x.running})`
  const seen = held.length === 0 ? 'no other version is installed' : `installed: ${why.slice(-MAX_NAMED).join(', ')}`
  return {
    action: 'stay',
    code: ERR_AGENT_NO_FALLBACK,
    reason: `agent ${x.running} is refused by the fleet but nothing to go back to: ${floor}; ${seen}`.slice(
      0,
      MAX_FALLBACK_REASON,
    ),
  }
}

/** The publish default of `min_agent_version`: the first version of `version`'s compatibility line. */
export function compatFloor(version: string): string {
  const p = parseVersion(version)
  if (p === undefined) return version
  const floor = p.major > 0 ? `${p.major}.0.0` : p.minor > 0 ? `0.${p.minor}.0` : version
  return compareVersions(floor, version) > 0 ? version : floor
}
