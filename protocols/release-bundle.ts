/**
 * Release bundles: a release carried on removable media to a site with no seed (docs/protocol.md,
 * "Release bundles"). Pure: the index schema, the file names, the binary framing of the feed
 * proofs and of an import upload, and the typed refusal. No I/O.
 *
 * A bundle is a directory:
 *   bundle.json        the index (`BundleIndex`): what the bundle holds, small
 *   release.json       the signed release envelope, byte for byte as the mesh carries it
 *                      (manifest + Sigstore bundle; its id is `index.digest`)
 *   trust/<v>-<n>.json the TrustRoot envelopes the exporting node stores (the rotation chain)
 *   feed.proofs        hypercore Merkle proofs of the release's blocks, signed by the lineage
 *                      feed's key (frames of `encodeFrames`), so the importing node can serve the
 *                      blocks to peers exactly as if it had fetched them
 *   chunks/<sha256>    one file per chunk, named by the hash the signed chunk index carries
 *
 * Nothing in the index is trusted: every check runs against the signed manifest.
 */
import * as z from 'zod'
import { LlmeshError } from './errors.ts'

/** File names inside a bundle directory. */
export const BUNDLE_INDEX_FILE = 'bundle.json'
export const BUNDLE_RELEASE_FILE = 'release.json'
export const BUNDLE_TRUST_DIR = 'trust'
export const BUNDLE_PROOFS_FILE = 'feed.proofs'
export const BUNDLE_CHUNKS_DIR = 'chunks'
/** Format version of `bundle.json`. */
export const BUNDLE_FORMAT = 1
/** Largest `bundle.json`, release envelope or trust envelope accepted (bytes). */
export const MAX_BUNDLE_META_BYTES = 1024 * 1024
/** Largest `feed.proofs` per block of the release (a proof is a few hundred bytes; bounded). */
export const MAX_PROOF_BYTES_PER_BLOCK = 8192
/** Largest `feed.proofs` at all (a proof per block: ~1 KiB each for a 4 GiB model's 65k blocks). */
export const MAX_PROOFS_FILE_BYTES = 256 * 1024 * 1024
/** Largest head of an import upload (index and envelopes, base64). */
export const MAX_IMPORT_HEAD_BYTES = 8 * 1024 * 1024
/** Most trust envelopes a bundle may carry. */
export const MAX_BUNDLE_TRUST = 64

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/)

/** `bundle.json`. */
export const BundleIndex = z
  .object({
    type: z.literal('ReleaseBundle'),
    format: z.literal(BUNDLE_FORMAT),
    fleet: z.string().min(1).max(128),
    model: z.string().min(1).max(128),
    version: z.string().min(1).max(64),
    seq: z.number().int().positive(),
    /** Message id of `release.json`. */
    digest: Hex64,
    /** The version whose holders the bundle was cut for (only chunks they lack are in `chunks/`). */
    since: z.string().min(1).max(64).optional(),
    /** Trust envelope files, oldest first. */
    trust: z.array(z.string().regex(/^trust\/[0-9]+-[0-9]+\.json$/)).max(MAX_BUNDLE_TRUST),
    /** Lineage feed key and the length the proofs upgrade to. */
    feed: z.object({ key: Hex64, length: z.number().int().positive() }),
    /** Chunk files present (hashes), and their total bytes: for progress and `cp -n` resumption. */
    chunks: z.array(Hex64),
    bytes: z.number().int().nonnegative(),
    exported_at: z.number().int().nonnegative(),
    exported_by: z.string().max(128),
  })
  .strict()
/** `bundle.json`. */
export type BundleIndex = z.infer<typeof BundleIndex>

/** Why a bundle was refused. Stable codes; the message starts with the bundle file at fault. */
export type BundleCode =
  | 'ERR_BUNDLE_FORMAT'
  | 'ERR_BUNDLE_MISMATCH'
  | 'ERR_BUNDLE_CHUNK_DIGEST'
  | 'ERR_BUNDLE_CHUNK_UNKNOWN'
  | 'ERR_BUNDLE_CHUNK_MISSING'
  | 'ERR_BUNDLE_FILE_DIGEST'
  | 'ERR_BUNDLE_PROOF'
  | 'ERR_BUNDLE_FEED_STATE'
  | 'ERR_BUNDLE_TOO_LARGE'

/**
 * A bundle refused. `code` is a `BundleCode`, or the verifier's own code (ERR_EXPIRED,
 * ERR_ROLLBACK, ERR_WRONG_FLEET, ERR_BAD_SIGNATURE, …) for the signed messages; `file` is the
 * bundle file at fault, relative to the bundle directory.
 */
export class BundleError extends LlmeshError {
  readonly file: string
  constructor(code: BundleCode | string, file: string, reason: string, options?: { cause?: unknown }) {
    super(code, `${file}: ${reason}`, options)
    this.name = 'BundleError'
    this.file = file
  }
}

/** The path of a chunk file in a bundle. */
export function chunkFile(hash: string): string {
  return `${BUNDLE_CHUNKS_DIR}/${hash}`
}

/** Concatenates length-prefixed frames (u32 big-endian length, then the bytes). */
export function encodeFrames(frames: readonly Uint8Array[]): Uint8Array {
  const total = frames.reduce((n, f) => n + 4 + f.byteLength, 0)
  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  let at = 0
  for (const f of frames) {
    view.setUint32(at, f.byteLength)
    out.set(f, at + 4)
    at += 4 + f.byteLength
  }
  return out
}

/** Splits `encodeFrames` output; throws BundleError(ERR_BUNDLE_FORMAT) naming `file` on a torn frame. */
export function decodeFrames(bytes: Uint8Array, file: string, maxFrames: number): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out: Uint8Array[] = []
  let at = 0
  while (at < bytes.byteLength) {
    if (out.length >= maxFrames) throw new BundleError('ERR_BUNDLE_FORMAT', file, `more than ${maxFrames} frames`)
    if (at + 4 > bytes.byteLength) throw new BundleError('ERR_BUNDLE_FORMAT', file, 'truncated frame header')
    const len = view.getUint32(at)
    if (at + 4 + len > bytes.byteLength) throw new BundleError('ERR_BUNDLE_FORMAT', file, 'truncated frame')
    out.push(bytes.subarray(at + 4, at + 4 + len))
    at += 4 + len
  }
  return out
}

/**
 * The head of an import upload (`POST /releases/import`): bundle.json, release.json and the trust
 * files, base64. The body is: a u32 big-endian length and the head's JSON; a u32 big-endian
 * length and feed.proofs (bounded by the verified release's block count, read only once the
 * release verified); then chunk frames: 64 ASCII hex bytes naming the chunk file, a u32
 * big-endian length, the file's bytes.
 */
export const ImportHead = z
  .object({
    index: z.unknown(),
    release: z.string().max(MAX_BUNDLE_META_BYTES * 2),
    trust: z
      .array(z.object({ file: z.string().max(64), wire: z.string().max(MAX_BUNDLE_META_BYTES * 2) }))
      .max(MAX_BUNDLE_TRUST),
  })
  .strict()
/** The head of an import upload. */
export type ImportHead = z.infer<typeof ImportHead>

/** Bytes of a chunk frame's header (hash + length). */
export const CHUNK_FRAME_HEADER = 68

/** The header of a chunk frame. */
export function chunkFrameHeader(hash: string, size: number): Uint8Array {
  const out = new Uint8Array(CHUNK_FRAME_HEADER)
  out.set(new TextEncoder().encode(hash), 0)
  new DataView(out.buffer).setUint32(64, size)
  return out
}
