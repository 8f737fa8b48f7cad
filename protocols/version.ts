/**
 * Release versions: semver whose build metadata may hold `_` (`1.3.0+gguf-q4_0`, `q4_K_M`), which
 * `semver.valid()` refuses. Parse and compare them by their semver core (+ prerelease) with
 * `semver`, then by the build string as a deterministic tie-break, never with `semver` on the
 * whole string. Pure.
 */
import semver from 'semver'
import { isStrictSemver, versionCore } from './schemas/common.ts'

/** A parsed release version. */
export interface ParsedVersion {
  /** The whole version, as given. */
  raw: string
  /** `MAJOR.MINOR.PATCH[-pre]`: what semver compares. */
  core: string
  /** Build metadata after `+` ('' when none): compared as a plain string, only to break ties. */
  build: string
}

/** Parses a release version; null when it is not `MAJOR.MINOR.PATCH[-pre][+build]`. */
export function parseVersion(v: string): ParsedVersion | null {
  if (typeof v !== 'string' || !isStrictSemver(v)) return null
  const core = versionCore(v)
  return { raw: v, core, build: v.length > core.length ? v.slice(core.length + 1) : '' }
}

/**
 * Orders two valid versions: by semver on core + prerelease, then by build metadata (code-unit
 * order, so `+gguf-f16` < `+gguf-q4_0`): a total order, the same on every node. Throws a
 * TypeError on an invalid version (check with parseVersion first).
 */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a)
  const pb = parseVersion(b)
  if (pa === null || pb === null) throw new TypeError(`not a release version: ${pa === null ? a : b}`)
  return semver.compare(pa.core, pb.core) || (pa.build < pb.build ? -1 : pa.build > pb.build ? 1 : 0)
}
