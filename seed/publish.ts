/**
 * Publishing a release on the seed: validate the GGUF header (refusing files llama.cpp cannot
 * load), chunk the file and append the new chunks to the model's lineage feed, build the
 * manifest (per-model seq = previous + 1, expiry) and sign it with the operator key. The caller
 * (the seed's route) then hands the wire bytes to the mesh, which verifies, stores and gossips them.
 */

import { checkGgufForLlama } from '../node/model/gguf.ts'
import type { ModelStore } from '../node/store/model-store.ts'
import { InvalidInputError } from '../protocols/errors.ts'
import { DEFAULT_POLICY } from '../protocols/rollout/policy-defaults.ts'
import type { ReleaseManifest, RolloutPolicy } from '../protocols/schemas/index.ts'
import { SemverString } from '../protocols/schemas/index.ts'
import type { OperatorSigner } from '../protocols/signing/index.ts'
import { signOperatorMessage } from '../protocols/signing/index.ts'
import { messageIdOfWire } from '../protocols/signing/message-id.ts'
import { buildReleaseManifest } from './manifest.ts'

/** What to publish. */
export interface PublishInput {
  /** Path of the GGUF file (on the seed). */
  file: string
  model: string
  version: string
  /** Rollout policy (default `DEFAULT_POLICY`). */
  policy?: RolloutPolicy
  approvedBy?: string[]
  /** CPU architectures (default `['any']`). */
  architectures?: ReleaseManifest['architectures']
  /** node-llama-cpp semver range (default `DEFAULT_RUNTIME_RANGE`). */
  runtime?: string
  /** RAM the model needs, MiB (default 1.2 × file size). */
  minRamMb?: number
  /** Manifest lifetime, ms (default `RELEASE_TTL_MS`, 90 days). */
  ttlMs?: number
  baseModel?: string
  /** Now, ms since epoch (default `Date.now()`). */
  now?: number
  /** Called as the file is chunked. */
  onProgress?: (bytesDone: number) => void
}

/** What publishing uses. */
export interface PublishComponents {
  store: ModelStore
  signer: OperatorSigner
  /** Fleet id. */
  fleet: string
  /** Highest release seq already known for a model (the daemon's message store); default 0. */
  highestSeq?: (model: string) => number
}

/** A signed release. */
export interface PublishResult {
  manifest: ReleaseManifest
  /** Canonical wire bytes of the signed envelope. */
  wire: Uint8Array
  /** sha256 of `wire`: the message's digest. */
  digest: string
  newChunks: number
  newBytes: number
}

/** Validates, chunks, appends and signs. Throws GgufError / InvalidInputError on bad input. */
export async function publishRelease(input: PublishInput, c: PublishComponents): Promise<PublishResult> {
  if (!SemverString.safeParse(input.version).success) {
    throw new InvalidInputError(`version ${JSON.stringify(input.version)} is not a semantic version`)
  }
  const info = await checkGgufForLlama(input.file)
  const append = await c.store.appendFile(input.model, input.file, { onProgress: input.onProgress })
  const now = input.now ?? Date.now()
  let manifest: ReleaseManifest
  try {
    manifest = buildReleaseManifest({
      fleet: c.fleet,
      model: input.model,
      version: input.version,
      seq: (c.highestSeq?.(input.model) ?? 0) + 1,
      append,
      gguf: {
        quantization: info.quantization,
        architecture: info.architecture ?? 'unknown',
        contextLength: info.contextLength,
      },
      policy: input.policy ?? DEFAULT_POLICY,
      architectures: input.architectures,
      runtime: input.runtime,
      minRamMb: input.minRamMb,
      approvedBy: input.approvedBy,
      baseModel: input.baseModel,
      now,
      ttlMs: input.ttlMs,
    })
  } catch (err) {
    throw new InvalidInputError(`release manifest is invalid: ${(err as Error).message}`, { cause: err })
  }
  const wire = await signOperatorMessage(manifest, c.signer)
  return { manifest, wire, digest: messageIdOfWire(wire), newChunks: append.newChunks, newBytes: append.newBytes }
}
