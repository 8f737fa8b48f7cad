/**
 * Builds a release manifest from what publishing learned: the GGUF header, the chunk index of
 * the lineage feed, the policy and provenance. Pure: `now` is passed in.
 */

import type { AppendResult } from '../node/store/lineage-append.ts'
import { SCHEMA_VERSION } from '../protocols/constants.ts'
import { type ProbeSet, probeSetDigest, ReleaseManifest, type RolloutPolicy } from '../protocols/schemas/index.ts'
import { DEFAULT_RUNTIME_RANGE, RELEASE_TTL_MS } from './constants.ts'

/** Inputs of a manifest. */
export interface ManifestInput {
  fleet: string
  model: string
  version: string
  seq: number
  append: AppendResult
  /** From the GGUF header. */
  gguf: { quantization: string; architecture: string; contextLength?: number }
  policy: RolloutPolicy
  architectures?: ReleaseManifest['architectures']
  runtime?: string
  minRamMb?: number
  approvedBy?: string[]
  baseModel?: string
  now: number
  ttlMs?: number
  /** The model's highest version this release goes below (an allowed downgrade), if any. */
  downgradeFrom?: string
  /** Quality probes, inline; `provenance.validation_dataset` names them by digest. */
  probes?: ProbeSet
}

/** Returns a schema-checked manifest (throws a ZodError on invalid input). */
export function buildReleaseManifest(i: ManifestInput): ReleaseManifest {
  return ReleaseManifest.parse({
    type: 'ReleaseManifest',
    v: SCHEMA_VERSION,
    fleet: i.fleet,
    model: i.model,
    version: i.version,
    seq: i.seq,
    file: {
      size: i.append.size,
      sha256: i.append.sha256,
      format: 'gguf',
      quantization: i.gguf.quantization.slice(0, 32),
      model_arch: i.gguf.architecture.slice(0, 64),
      ...(i.gguf.contextLength !== undefined && i.gguf.contextLength > 0
        ? { context_length: i.gguf.contextLength }
        : {}),
    },
    architectures: i.architectures ?? ['any'],
    runtime: i.runtime ?? DEFAULT_RUNTIME_RANGE,
    min_ram_mb: i.minRamMb ?? Math.ceil((i.append.size * 1.2) / 1048576),
    chunks: i.append.chunks,
    policy: i.policy,
    provenance: {
      approved_by: i.approvedBy ?? [],
      ...(i.baseModel ? { base_model: i.baseModel } : {}),
      ...(i.probes ? { validation_dataset: { id: i.probes.id, digest: probeSetDigest(i.probes) } } : {}),
    },
    created_at: i.now,
    expires_at: i.now + (i.ttlMs ?? RELEASE_TTL_MS),
    ...(i.downgradeFrom !== undefined ? { downgrade: { from: i.downgradeFrom } } : {}),
    ...(i.probes !== undefined ? { probes: i.probes } : {}),
  })
}
