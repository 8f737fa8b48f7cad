/**
 * Agent releases: a release of llmesh itself (its code, Node runtime, node-llama-cpp) in the same
 * family as model releases. One manifest names one agent version and one package per CPU
 * architecture (the `llmesh-<v>-linux-<arch>.tar.gz` of `npm run package`), each chunked into its
 * own lineage feed like a model file, with the same rollout policy, cohorts and gates. The
 * compatibility fields are checked by devices with `checkAgentUpgrade` (protocols/agent/upgrade.ts).
 * Model manifests are untouched: this is a separate message type (`AgentRelease`).
 */
import * as z from 'zod'
import { SCHEMA_VERSION } from '../constants.ts'
import { FleetId, SemverString, Sha256Hex, Timestamp } from './common.ts'
import { RolloutPolicy } from './policy.ts'
import { ChunkIndex, Provenance } from './release.ts'

/** CPU architectures a package is built for (`process.arch`); a package is never `any`. */
export const PackageArch = z.enum(['arm64', 'x64', 'arm', 'riscv64'])
export type PackageArch = z.infer<typeof PackageArch>

/** A package file name: `llmesh-<v>-linux-<arch>.tar.gz` or any path-safe `*.tar.gz`. */
export const PackageName = z
  .string()
  .max(160)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*\.tar\.gz$/, 'expected a package file name ending in .tar.gz')

/** The package of one architecture. */
export const AgentPackage = z.object({
  arch: PackageArch,
  name: PackageName,
  size: z.number().int().positive(),
  sha256: Sha256Hex,
  /** The package's chunks in its lineage feed (`agentLineage(arch)`), as a model file's. */
  chunks: ChunkIndex,
})
export type AgentPackage = z.infer<typeof AgentPackage>

/**
 * A release of the agent. Signed by the operator (Sigstore bundle, operator payload type).
 * `seq` orders agent releases (rollback key `agent`), like a model's seq.
 */
export const AgentRelease = z.object({
  type: z.literal('AgentRelease'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  version: SemverString,
  seq: z.number().int().positive(),
  packages: z
    .array(AgentPackage)
    .min(1)
    .max(8)
    .refine((ps) => new Set(ps.map((p) => p.arch)).size === ps.length, 'one package per architecture'),
  /**
   * The lowest agent version able to read the data directory and the messages this version writes.
   * A device never goes (by downgrade or by its own rollback) from this version to one below it.
   */
  min_agent_version: SemverString,
  /**
   * The lowest running version that may upgrade to this one directly: a device running below it
   * must install an intermediate release first (a required step). Absent: any version may.
   */
  min_from: SemverString.optional(),
  policy: RolloutPolicy,
  provenance: Provenance,
  created_at: Timestamp,
  expires_at: Timestamp,
  /** Present only when published below the highest agent version on purpose (`--allow-downgrade`). */
  downgrade: z.object({ from: SemverString }).optional(),
})
export type AgentRelease = z.infer<typeof AgentRelease>
