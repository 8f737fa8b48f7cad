import * as z from 'zod'
import { isReservedModelName, RESERVED_NAMES_TEXT } from '../agent/reserved-names.ts'
import { SCHEMA_VERSION } from '../constants.ts'
import { CpuArch, FleetId, ModelName, SemverRange, SemverString, Sha256Hex, Timestamp } from './common.ts'
import { RolloutPolicy } from './policy.ts'
import { ProbeSet } from './probes.ts'

/** One content-defined chunk of the model file, stored as one block of the model's hypercore feed. */
export const ChunkRef = z.object({
  /** sha256 of the chunk's bytes. */
  hash: Sha256Hex,
  /** Block index in the model lineage's hypercore feed. */
  block: z.number().int().nonnegative(),
  /** Chunk length in bytes; chunk offsets in the file are the running sum. */
  size: z.number().int().positive(),
})
export type ChunkRef = z.infer<typeof ChunkRef>

/** Where and how the file's chunks live. */
export const ChunkIndex = z.object({
  /** Hypercore feed public key (hex) of the model lineage. */
  feed: z.string().regex(/^[0-9a-f]{64}$/),
  /** Length of the feed when the release was cut: a peer must hold at least this prefix's tree. */
  feed_length: z.number().int().nonnegative(),
  chunking: z.object({
    algo: z.literal('fastcdc'),
    min: z.number().int().positive(),
    avg: z.number().int().positive(),
    max: z.number().int().positive(),
  }),
  chunks: z.array(ChunkRef).min(1),
})
export type ChunkIndex = z.infer<typeof ChunkIndex>

/** Who approved the release and what it was validated with. */
export const Provenance = z.object({
  approved_by: z.array(z.string().min(1).max(128)).max(16).default([]),
  /**
   * The validation (quality probe) set the release was checked with: `digest` = `probeSetDigest`
   * of the manifest's `probes` when those are inline (the verifier refuses a mismatch).
   */
  validation_dataset: z.object({ id: z.string().max(256), digest: Sha256Hex }).optional(),
  build_log_digest: Sha256Hex.optional(),
  base_model: z.string().max(256).optional(),
})
export type Provenance = z.infer<typeof Provenance>

/**
 * A release of one model version: what the file is, what it needs, how it is chunked, how it rolls out.
 * Signed by the operator as the predicate of an in-toto statement whose subject is the file's sha256.
 */
export const ReleaseManifest = z.object({
  type: z.literal('ReleaseManifest'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  /** Never a name agent releases own (`llmesh-agent`, `llmesh-agent-<arch>`: protocols/agent/reserved-names.ts). */
  model: ModelName.refine((m) => !isReservedModelName(m), RESERVED_NAMES_TEXT),
  /** Semver with build metadata, e.g. `1.3.0+gguf-q4_0-aarch64`. */
  version: SemverString,
  /** Per-model sequence number: a device never accepts one lower than the highest it has seen. */
  seq: z.number().int().positive(),
  file: z.object({
    size: z.number().int().positive(),
    sha256: Sha256Hex,
    format: z.literal('gguf'),
    quantization: z.string().max(32),
    /** Model architecture from the GGUF header (e.g. `llama`). */
    model_arch: z.string().max(64),
    context_length: z.number().int().positive().optional(),
  }),
  /** CPU architectures the build runs on. */
  architectures: z.array(CpuArch).min(1).max(8),
  /** Semver range of the inference runtime (node-llama-cpp) the file needs. */
  runtime: SemverRange,
  min_ram_mb: z.number().int().nonnegative(),
  chunks: ChunkIndex,
  policy: RolloutPolicy,
  provenance: Provenance,
  created_at: Timestamp,
  expires_at: Timestamp,
  /**
   * Present only when the operator published this version below the model's highest version
   * on purpose (`llmesh release publish --allow-downgrade`): `from` is that highest version.
   * Absent in every other manifest (older manifests stay valid).
   */
  downgrade: z.object({ from: SemverString }).optional(),
  /**
   * Quality probes devices run on this version when idle (`llmesh release publish --probes`),
   * inline and signed; named by `provenance.validation_dataset`. Optional: older manifests stay valid.
   */
  probes: ProbeSet.optional(),
})
export type ReleaseManifest = z.infer<typeof ReleaseManifest>
