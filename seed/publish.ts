/**
 * Publishing a release on the seed. Everything that can be checked is checked before anything
 * is written: the request (seed/release-checks.ts: name, version, policy, runtime range,
 * architectures, duplicate, downgrade) and the GGUF header (refusing files llama.cpp cannot
 * load). Only then is the file chunked and its new chunks appended to the model's lineage feed
 * (an append is permanent: a refused publish must never grow the feed), the manifest built
 * (per-model seq from the operator's sequence authority, seed/seq-authority.ts, reserved durably
 * before signing; expiry) and signed with the operator key. The caller (the
 * seed's route) then hands the wire bytes to the mesh, which verifies, stores and gossips them.
 */

import { basename } from 'node:path'
import { checkGgufForLlama, GgufError, type GgufInfo } from '../node/model/gguf.ts'
import type { ModelStore } from '../node/store/model-store.ts'
import { InvalidInputError } from '../protocols/errors.ts'
import type { ReleaseManifest } from '../protocols/schemas/index.ts'
import type { OperatorSigner } from '../protocols/signing/index.ts'
import { signOperatorMessage } from '../protocols/signing/index.ts'
import { messageIdOfWire } from '../protocols/signing/message-id.ts'
import { buildReleaseManifest } from './manifest.ts'
import {
  checkVersion,
  type KnownRelease,
  manifestFields,
  preflightManifest,
  type ReleaseRequest,
} from './release-checks.ts'
import type { SeqAuthority } from './seq-authority.ts'

/** What to publish. */
export interface PublishInput extends ReleaseRequest {
  /** Path of the GGUF file (on the seed). */
  file: string
  /** How error messages name the file (default its base name; never the seed's spool path). */
  displayName?: string
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
  /** Releases already known (the daemon's message store), for the duplicate and downgrade checks; default none. */
  known?: () => readonly KnownRelease[]
  /** The operator's durable seq counter; without it the seq is the highest known + 1 (tests). */
  seqs?: SeqAuthority
}

/** A signed release. */
export interface PublishResult {
  manifest: ReleaseManifest
  /** Canonical wire bytes of the signed envelope. */
  wire: Uint8Array
  /** The message id of `wire` (protocols/signing/message-id.ts): its digest everywhere. */
  digest: string
  newChunks: number
  newBytes: number
}

/**
 * Validates, then chunks, appends and signs. Throws InvalidInputError, VersionExistsError,
 * DowngradeError or GgufError before anything is appended.
 */
export async function publishRelease(input: PublishInput, c: PublishComponents): Promise<PublishResult> {
  const now = input.now ?? Date.now()
  const highest = c.highestSeq?.(input.model) ?? 0
  const seq = c.seqs?.next(input.model, highest) ?? highest + 1
  const { downgradeFrom } = checkVersion(input.model, input.version, c.known?.() ?? [], input.allowDowngrade)
  preflightManifest(input, { fleet: c.fleet, seq, now, downgradeFrom })
  const info = await checkGguf(input.file, input.displayName ?? basename(input.file))
  const append = await c.store.appendFile(input.model, input.file, { onProgress: input.onProgress })
  let manifest: ReleaseManifest
  try {
    manifest = buildReleaseManifest({
      ...manifestFields(input, { fleet: c.fleet, seq, now, downgradeFrom }),
      append,
      gguf: {
        quantization: info.quantization,
        architecture: info.architecture ?? 'unknown',
        contextLength: info.contextLength,
      },
    })
  } catch (err) {
    throw new InvalidInputError(`release manifest is invalid: ${(err as Error).message}`, { cause: err })
  }
  await c.seqs?.reserve(input.model, seq)
  const wire = await signOperatorMessage(manifest, c.signer)
  return { manifest, wire, digest: messageIdOfWire(wire), newChunks: append.newChunks, newBytes: append.newBytes }
}

/** The GGUF check, with every mention of the file's path replaced by `name`. */
async function checkGguf(file: string, name: string): Promise<GgufInfo> {
  try {
    return await checkGgufForLlama(file)
  } catch (err) {
    if (err instanceof GgufError) throw new GgufError(err.code, err.message.split(file).join(name))
    throw new InvalidInputError(`${name}: cannot read the file`, { cause: err })
  }
}
