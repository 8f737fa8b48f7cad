/**
 * Feed proofs carried out of band (release bundles, node/install/bundle-*.ts): hypercore's own
 * Merkle proofs, encoded as its replication `data` message, so a node that never met the feed's
 * writer can hold and serve a lineage's blocks exactly as if it had replicated them.
 *
 * How it works: the exporting node writes one upgrade proof from length 0 to its feed length
 * (the feed key's signature over the tree; it carries the feed's hypercore manifest), upgrade
 * proofs from the other lengths a site may already hold (earlier releases' `feed_length`, when
 * this node can prove them), and one proof per block with every node up to the roots. The
 * importing node applies the upgrade whose start is its own length, then each block's proof
 * with the block's bytes: hypercore verifies each against the signed tree before storing it.
 */
import { createRequire } from 'node:module'
import type Hypercore from 'hypercore'

interface Codec {
  encode(enc: unknown, m: unknown): Uint8Array
  decode(enc: unknown, b: Uint8Array): Record<string, unknown>
}
const requireHc = createRequire(createRequire(import.meta.url).resolve('hypercore'))
const cenc = requireHc('compact-encoding') as Codec
const messages = requireHc('./lib/messages.js') as { wire: { data: unknown }; multiSignature: unknown }
const dataMessage = messages.wire.data
/** How many tree nodes a node holding only the roots of `length` misses to verify block `index` (hypercore's own count). */
const { MerkleTree } = requireHc('./lib/merkle-tree.js') as {
  MerkleTree: { maxMissingNodes(index: number, length: number): number }
}

/** A decoded proof frame. */
export interface FeedProof {
  /** Start and length of the upgrade it proves, if any. */
  upgrade?: { start: number; length: number }
  /** The block it proves, if any. */
  block?: number
  raw: Record<string, unknown>
}

/** The hypercore manifest of a feed (needed by a node that never opened it). */
function manifestOf(core: Hypercore): unknown {
  return (core as unknown as { core?: { header?: { manifest?: unknown } } }).core?.header?.manifest ?? null
}

function encode(core: Hypercore, p: Record<string, unknown>, withManifest: boolean): Uint8Array {
  const block = p.block as { value?: unknown } | null | undefined
  if (block) block.value = Buffer.alloc(0) // the bytes travel as chunk files
  return cenc.encode(dataMessage, { ...p, request: 0, manifest: withManifest ? manifestOf(core) : null })
}

/** Proofs of `blocks` at the core's current length, plus upgrades from 0 and from each of `starts`. */
export async function exportProofs(core: Hypercore, blocks: readonly number[], starts: readonly number[]) {
  const length = core.length
  const frames: Uint8Array[] = [encode(core, await core.proof({ upgrade: { start: 0, length } }), true)]
  for (const start of new Set(starts)) {
    if (start <= 0 || start >= length) continue
    try {
      frames.push(encode(core, await core.proof({ upgrade: { start, length: length - start } }), false))
    } catch {
      // this node lacks tree nodes to prove from `start`: that site takes the upgrade from 0 only
    }
  }
  for (const index of blocks) {
    const nodes = MerkleTree.maxMissingNodes(2 * index, length)
    frames.push(encode(core, await core.proof({ block: { index, nodes } }), false))
  }
  return { length, frames }
}

/**
 * Decodes one frame; throws on bytes that are not a proof as `exportProofs` writes it. Strict, so
 * that no byte of a proof file is free to change: hypercore's decoder ignores bytes after the
 * message and the request id, and its verifier ignores a signer's patch count on a feed that allows
 * no patches (found by flipping every byte of a bundle's proofs: 10 of 664 flips imported). So a
 * frame must be the canonical encoding of what it decodes to, with request id 0, no block bytes
 * (they travel as chunk files), and a tree signature without patches (our feeds have one signer
 * that signs every length it writes).
 */
export function decodeProof(frame: Uint8Array): FeedProof {
  const raw = cenc.decode(dataMessage, frame)
  if (raw.request !== 0) throw new Error(`request id ${raw.request}, not 0`)
  if (!Buffer.from(cenc.encode(dataMessage, raw)).equals(frame)) throw new Error('not in canonical form')
  const up = raw.upgrade as { start: number; length: number; signature: Uint8Array | null } | null
  const block = raw.block as { index: number; value: Uint8Array | null } | null
  if (block && block.value !== null && block.value.byteLength > 0) throw new Error('carries block bytes')
  if (up?.signature && up.signature.byteLength !== 64) {
    const sig = cenc.decode(messages.multiSignature, up.signature) as { proofs: { patch: number }[]; patch: unknown[] }
    if (sig.patch.length > 0 || sig.proofs.some((p) => p.patch !== 0)) throw new Error('tree signature with a patch')
    if (!Buffer.from(cenc.encode(messages.multiSignature, sig)).equals(up.signature))
      throw new Error('tree signature not in canonical form')
  }
  return {
    raw,
    ...(up ? { upgrade: { start: up.start, length: up.length } } : {}),
    ...(block ? { block: block.index } : {}),
  }
}

/** Applies a decoded proof, with `value` as the block's bytes when it proves a block. */
export async function applyProof(core: Hypercore, p: FeedProof, value?: Uint8Array): Promise<boolean> {
  const raw = { ...p.raw }
  if (raw.block) raw.block = { ...(raw.block as object), value: value === undefined ? null : Buffer.from(value) }
  return core.applyProof(raw)
}
