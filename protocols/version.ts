/**
 * Release versions: `MAJOR.MINOR.PATCH[-prerelease][+build]`, where the build metadata may hold
 * `_` (quantization names such as `q4_0`, `q4_K_M`), which `semver.valid()` refuses. Every place
 * that orders or validates release versions (seed publish checks, installer GC, `staged`) goes
 * through here, never through `semver` on the whole string.
 *
 * Ordering rule: precedence is semver's on the core and prerelease; build metadata carries no
 * precedence (as in semver §10). Two builds of one core (`1.3.0+gguf-q4_0`, `1.3.0+gguf-q8_0`)
 * are distinct variants of equal precedence: `compareVersions` gives 0, and
 * `compareVersionsTotal` breaks the tie by the build string so lists are deterministic.
 */
import semver from 'semver'

/** Longest version string accepted (the manifest schema's bound). */
export const MAX_VERSION_LENGTH = 128

/** Build metadata: dot-separated identifiers of `[0-9A-Za-z_-]`. */
const BUILD_METADATA = /^[0-9A-Za-z_-]+(\.[0-9A-Za-z_-]+)*$/

/** A parsed release version. */
export interface ParsedVersion {
  /** The version as given. */
  raw: string
  /** Everything before `+`: `MAJOR.MINOR.PATCH[-prerelease]`, strict semver. */
  core: string
  major: number
  minor: number
  patch: number
  /** Prerelease identifiers (empty for a release). */
  prerelease: ReadonlyArray<string | number>
  /** Build metadata after `+`, undefined when absent. */
  build: string | undefined
}

/** Parses a version; undefined when it is not `MAJOR.MINOR.PATCH[-pre][+build]` (build may hold `_`). */
export function parseVersion(v: string): ParsedVersion | undefined {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_VERSION_LENGTH) return undefined
  const plus = v.indexOf('+')
  const core = plus === -1 ? v : v.slice(0, plus)
  const build = plus === -1 ? undefined : v.slice(plus + 1)
  if (build !== undefined && !BUILD_METADATA.test(build)) return undefined
  const sv = semver.parse(core)
  if (sv === null || sv.version !== core) return undefined
  return { raw: v, core, major: sv.major, minor: sv.minor, patch: sv.patch, prerelease: sv.prerelease, build }
}

/** True for a valid release version. */
export function isVersion(v: string): boolean {
  return parseVersion(v) !== undefined
}

function parsed(v: string): ParsedVersion {
  const p = parseVersion(v)
  if (p === undefined) throw new TypeError(`not a release version: ${JSON.stringify(v).slice(0, 140)}`)
  return p
}

/**
 * Semver precedence of two versions, ignoring build metadata: negative when `a` < `b`, 0 when
 * equal (including two builds of one core), positive when `a` > `b`. Throws TypeError on an
 * invalid version (callers hold schema-checked versions).
 */
export function compareVersions(a: string, b: string): number {
  return semver.compare(parsed(a).core, parsed(b).core)
}

/**
 * A total order for listing and collecting: precedence first, then no build before any build,
 * then the build strings by code unit. Equal only for identical strings.
 */
export function compareVersionsTotal(a: string, b: string): number {
  const byCore = compareVersions(a, b)
  if (byCore !== 0) return byCore
  const ba = parsed(a).build
  const bb = parsed(b).build
  if (ba === bb) return 0
  if (ba === undefined) return -1
  if (bb === undefined) return 1
  return ba < bb ? -1 : 1
}

/** The highest-precedence version of a list (ties broken by `compareVersionsTotal`), undefined when empty. */
export function highestVersion(versions: Iterable<string>): string | undefined {
  let best: string | undefined
  for (const v of versions) if (best === undefined || compareVersionsTotal(v, best) > 0) best = v
  return best
}
