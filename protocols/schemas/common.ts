import semver from 'semver'
import * as z from 'zod'

/** Milliseconds since the Unix epoch (UTC). */
export const Timestamp = z.number().int().nonnegative()
/** Lower-case hex sha256 digest. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lower-case hex sha256')
/** A libp2p peer id (base58btc, Ed25519 identity key: starts with 12D3Koo). */
export const PeerIdString = z
  .string()
  .regex(/^12D3Koo[1-9A-HJ-NP-Za-km-z]{40,60}$/, 'expected an Ed25519 libp2p peer id')
/** Fleet identifier: a short url-safe name. */
export const FleetId = z.string().regex(/^[a-z0-9][a-z0-9-]{2,62}$/, 'expected a fleet id (a-z, 0-9, -)')
/** Model name: url- and path-safe. */
export const ModelName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected a model name (a-z, 0-9, . _ -)')
/** Semver with optional pre-release and build metadata, e.g. `1.3.0+gguf-q4_0-aarch64`. */
export const SemverString = z
  .string()
  .max(128)
  .refine(isStrictSemver, 'expected a semantic version (MAJOR.MINOR.PATCH[-pre][+build])')

/** Build metadata: dot-separated identifiers; `_` is allowed too (as in `gguf-q4_0-aarch64`). */
const BUILD_METADATA = /^[0-9A-Za-z_-]+(\.[0-9A-Za-z_-]+)*$/

/**
 * True for `MAJOR.MINOR.PATCH[-pre][+build]`. The part before `+` must be strict semver; the
 * build metadata may also hold `_` (quantization names such as `q4_0`), which strict semver
 * refuses, so compare versions with `semver` on `versionCore(v)`, never on `v` itself.
 */
export function isStrictSemver(v: string): boolean {
  const plus = v.indexOf('+')
  const core = plus === -1 ? v : v.slice(0, plus)
  if (semver.valid(core) !== core) return false
  return plus === -1 || BUILD_METADATA.test(v.slice(plus + 1))
}

/** The version without its build metadata (`1.3.0+gguf-q4_0` → `1.3.0`), for semver comparisons. */
export function versionCore(v: string): string {
  const plus = v.indexOf('+')
  return plus === -1 ? v : v.slice(0, plus)
}
/** A semver range, e.g. `>=3.21.0 <4`. */
export const SemverRange = z
  .string()
  .max(128)
  .refine((v) => semver.validRange(v) !== null, 'expected a semver range')
/** Device tag. */
export const Tag = z.string().regex(/^[a-z0-9][a-z0-9:._-]{0,62}$/, 'expected a tag (a-z, 0-9, : . _ -)')
/** CPU architecture names as Node's `process.arch` reports them, plus `any`. */
export const CpuArch = z.enum(['arm64', 'x64', 'arm', 'riscv64', 'any'])

/** The `model@version` a command, verdict or report refers to. */
export const ReleaseRef = z.object({ model: ModelName, version: SemverString })
export type ReleaseRef = z.infer<typeof ReleaseRef>

/** Canonical string form `model@version`. */
export function releaseKey(ref: ReleaseRef): string {
  return `${ref.model}@${ref.version}`
}
