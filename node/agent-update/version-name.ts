/**
 * Whether a directory name under the agent root is a release version, without `semver`: the
 * supervisor (`llmesh agent run`, cli/agent-run.ts) loads no CommonJS package, each of which costs
 * it ~10 MiB RSS (Node's CommonJS loader; docs/benchmarks.md, "Idle footprint of a device").
 *
 * The same grammar as protocols/version.ts `isVersion` (strict semver 2.0 core and prerelease, as
 * `semver.parse` takes them with nothing normalized away; build metadata that may hold `_`; at
 * most MAX_VERSION_LENGTH characters); test/unit/agent-runner-lean.test.ts checks that both agree.
 */

/** Longest version string accepted (protocols/version.ts MAX_VERSION_LENGTH). */
const MAX_LENGTH = 128
const NUM = '0|[1-9]\\d*'
const PRE_ID = '(?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)'
const VERSION = new RegExp(
  `^(${NUM})\\.(${NUM})\\.(${NUM})(?:-${PRE_ID}(?:\\.${PRE_ID})*)?(?:\\+[0-9A-Za-z_-]+(?:\\.[0-9A-Za-z_-]+)*)?$`,
)

/** True for a valid release version (`MAJOR.MINOR.PATCH[-prerelease][+build]`). */
export function isVersionName(v: string): boolean {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_LENGTH) return false
  const m = VERSION.exec(v)
  // semver refuses a component above Number.MAX_SAFE_INTEGER
  return m !== null && [m[1], m[2], m[3]].every((n) => Number(n) <= Number.MAX_SAFE_INTEGER)
}
