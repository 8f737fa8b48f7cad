/**
 * Importing a release bundle (protocols/release-bundle.ts) on a node of a site with no seed and
 * no operator key. Everything is verified before anything the release needs is stored:
 *
 *   1. bundle.json parses; the trust envelopes and release.json pass the node's own verifier
 *      (the one gossip uses: signature against the trust root in force, fleet, expiry,
 *      rollback/sequence floor), and the release is the one the index names;
 *   2. each chunk file streamed in matches its name and the signed chunk index (size and
 *      sha256); chunks the node already holds are skipped; the others are staged on disk;
 *   3. every block the release needs is staged or held, and the whole file's sha256 and size
 *      match the manifest;
 *   4. only then: the lineage feed takes the signed upgrade and each block with hypercore's proof
 *      (hypercore checks each against the feed key's signature), and the release envelope goes
 *      through `publish` (verify, store, gossip), so the mesh rolls it out under its own policy
 *      as if it had been published here, and peers fetch the blocks from this node.
 * A refusal is a BundleError naming the bundle file at fault; staged chunks are deleted.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  BUNDLE_INDEX_FILE,
  BUNDLE_PROOFS_FILE,
  BUNDLE_RELEASE_FILE,
  BundleError,
  BundleIndex,
  CHUNK_FRAME_HEADER,
  chunkFile,
  decodeFrames,
  ImportHead,
  MAX_BUNDLE_TRUST,
  MAX_IMPORT_HEAD_BYTES,
  MAX_PROOF_BYTES_PER_BLOCK,
  MAX_PROOFS_FILE_BYTES,
} from '../../protocols/release-bundle.ts'
import type { ChunkRef, ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { IngestResult } from '../mesh/ingest.ts'
import type { VerifyOutcome } from '../mesh/types.ts'
import { applyProof, decodeProof, type FeedProof } from '../store/feed-proofs.ts'
import { blockInventory, releaseBlocks } from '../store/fetcher.ts'
import type { ModelStore } from '../store/model-store.ts'
import { ByteReader } from './byte-reader.ts'

/** What importing uses. */
export interface ImportDeps {
  store: ModelStore
  /** The node's verifier (no storing). */
  verify: (bytes: Uint8Array) => Promise<VerifyOutcome>
  /** Verifies, stores and gossips (the daemon's `ctx.publish`). */
  publish: (bytes: Uint8Array) => Promise<IngestResult>
  /** Where chunks are staged (a fresh subdirectory per import, deleted at the end). */
  stagingDir: string
}

/** Progress of an import. */
export interface ImportProgress {
  chunks: number
  bytes: number
}

/** What an import did. */
export interface ImportResult {
  model: string
  version: string
  seq: number
  digest: string
  /** Whether the release message was new here (false: it was already held). */
  new_release: boolean
  /** Blocks stored from the bundle / already held. */
  blocks_imported: number
  blocks_held: number
  bytes_imported: number
}

const fail = (code: string, file: string, reason: string): never => {
  throw new BundleError(code, file, reason)
}

/** Verifies a bundle streamed as an import upload, then stores it. See the header. */
export async function importBundle(
  body: AsyncIterable<Uint8Array>,
  deps: ImportDeps,
  onProgress?: (p: ImportProgress) => void,
): Promise<ImportResult> {
  const input = new ByteReader(body)
  const headLen = (await input.exactly(4, BUNDLE_INDEX_FILE)).readUInt32BE(0)
  if (headLen > MAX_IMPORT_HEAD_BYTES) fail('ERR_BUNDLE_TOO_LARGE', BUNDLE_INDEX_FILE, `head of ${headLen} bytes`)
  const head = parseHead(await input.exactly(headLen, BUNDLE_INDEX_FILE))
  const index = BundleIndex.safeParse(head.index)
  if (!index.success) return fail('ERR_BUNDLE_FORMAT', BUNDLE_INDEX_FILE, index.error.issues[0]?.message ?? 'invalid')
  const ix = index.data

  // 1. the signed messages, by the node's own verifier
  const trust = head.trust.map((t) => ({ file: t.file, wire: Buffer.from(t.wire, 'base64') }))
  for (const t of trust) {
    const out = await deps.verify(t.wire)
    if (!out.ok) fail(out.error.code, t.file, out.error.message)
  }
  const release = Buffer.from(head.release, 'base64')
  let out = await deps.verify(release)
  if (!out.ok && out.error.code === 'ERR_UNKNOWN_SIGNER' && trust.length > 0) {
    // signed under a newer root: the bundle's rotation chain (each envelope verified above) first
    for (const t of trust) await deps.publish(t.wire)
    out = await deps.verify(release)
  }
  if (!out.ok) return fail(out.error.code, BUNDLE_RELEASE_FILE, out.error.message)
  if (out.value.type !== 'ReleaseManifest') return fail('ERR_BUNDLE_MISMATCH', BUNDLE_RELEASE_FILE, 'not a release')
  const m = out.value.message as ReleaseManifest
  if (out.value.digest !== ix.digest || m.model !== ix.model || m.version !== ix.version || m.seq !== ix.seq)
    fail(
      'ERR_BUNDLE_MISMATCH',
      BUNDLE_INDEX_FILE,
      `names ${ix.model}@${ix.version}, release.json is ${m.model}@${m.version}`,
    )
  if (ix.feed.key !== m.chunks.feed || ix.feed.length < m.chunks.feed_length)
    fail('ERR_BUNDLE_MISMATCH', BUNDLE_INDEX_FILE, 'feed does not match the signed chunk index')

  const core = await deps.store.feed(m.chunks.feed)
  const blocks = releaseBlocks(m.chunks)
  // feed.proofs: bounded by the verified release's size, read only now
  const maxProofs = blocks.length + MAX_BUNDLE_TRUST + 1
  const proofLen = (await input.exactly(4, BUNDLE_PROOFS_FILE)).readUInt32BE(0)
  if (proofLen > Math.min(MAX_PROOF_BYTES_PER_BLOCK * maxProofs, MAX_PROOFS_FILE_BYTES))
    fail('ERR_BUNDLE_TOO_LARGE', BUNDLE_PROOFS_FILE, `${proofLen} bytes for ${blocks.length} blocks`)
  const proofs = decodeFrames(await input.exactly(proofLen, BUNDLE_PROOFS_FILE), BUNDLE_PROOFS_FILE, maxProofs).map(
    (f) => {
      try {
        return decodeProof(f)
      } catch (err) {
        return fail('ERR_BUNDLE_FORMAT', BUNDLE_PROOFS_FILE, `not a hypercore proof (${(err as Error).message})`)
      }
    },
  )
  const { missing } = await blockInventory(core, blocks)
  const byHash = new Map<string, ChunkRef>()
  for (const c of m.chunks.chunks) if (!byHash.has(c.hash)) byHash.set(c.hash, c)
  const needed = new Set(missing)
  // hypercore proves blocks against one tree: a feed here longer than the bundle's cannot take them
  if (needed.size > 0 && core.length > ix.feed.length)
    fail(
      'ERR_BUNDLE_FEED_STATE',
      BUNDLE_PROOFS_FILE,
      `cut at feed length ${ix.feed.length}, this node's feed is at ${core.length}: export again from a node as recent`,
    )

  // 2. chunk files, each against the signed index, staged
  const staging = join(deps.stagingDir, randomBytes(8).toString('hex'))
  await mkdir(staging, { recursive: true })
  try {
    const staged = new Set<number>()
    const seen = new Set<string>()
    const progress: ImportProgress = { chunks: 0, bytes: 0 }
    for (;;) {
      const hdr = await input.upTo(CHUNK_FRAME_HEADER)
      if (hdr === null) break
      if (hdr.byteLength < CHUNK_FRAME_HEADER) fail('ERR_BUNDLE_FORMAT', 'chunks/', 'truncated upload')
      const hash = hdr.subarray(0, 64).toString('latin1')
      const size = hdr.readUInt32BE(64)
      const file = chunkFile(hash)
      const ref = byHash.get(hash)
      if (ref === undefined) fail('ERR_BUNDLE_CHUNK_UNKNOWN', file, 'not a chunk of the signed chunk index')
      else if (seen.has(hash))
        fail('ERR_BUNDLE_FORMAT', file, 'sent twice') // an upload is bounded by the release
      else if (size !== ref.size)
        fail('ERR_BUNDLE_CHUNK_DIGEST', file, `${size} bytes, the signed index says ${ref.size}`)
      const data = await input.exactly(size, file)
      const got = createHash('sha256').update(data).digest('hex')
      if (got !== hash) fail('ERR_BUNDLE_CHUNK_DIGEST', file, `content hashes to ${got}, not its name`)
      seen.add(hash)
      const block = (ref as ChunkRef).block
      if (needed.has(block) && !staged.has(block)) {
        await writeFile(join(staging, hash), data)
        staged.add(block)
      }
      progress.chunks++
      progress.bytes += size
      onProgress?.(progress)
    }

    // 3. every block present, and the whole file
    for (const c of m.chunks.chunks)
      if (needed.has(c.block) && !staged.has(c.block))
        fail(
          'ERR_BUNDLE_CHUNK_MISSING',
          chunkFile(c.hash),
          ix.since !== undefined
            ? `missing (the bundle holds only what a holder of ${ix.since} lacks, and this node lacks it too)`
            : 'missing from the bundle',
        )
    const blockOf = new Map<number, string>()
    for (const c of m.chunks.chunks) blockOf.set(c.block, c.hash)
    const read = async (c: ChunkRef): Promise<Buffer> =>
      staged.has(c.block)
        ? readFile(join(staging, c.hash))
        : ((await core.get(c.block, { wait: false })) ??
          fail('ERR_BUNDLE_CHUNK_MISSING', chunkFile(c.hash), 'vanished'))
    const whole = createHash('sha256')
    let size = 0
    for (const c of m.chunks.chunks) {
      const data = await read(c)
      whole.update(data)
      size += data.byteLength
    }
    const sha = whole.digest('hex')
    if (sha !== m.file.sha256 || size !== m.file.size)
      fail(
        'ERR_BUNDLE_FILE_DIGEST',
        'chunks/',
        `the assembled file hashes to ${sha} (${size} bytes), not the signed ${m.file.sha256}`,
      )

    // 4. store: the feed's signed tree and blocks, then the release message
    await applyFeed(core, ix.feed.length, proofs, [...staged], async (b) =>
      readFile(join(staging, blockOf.get(b) as string)),
    )
    const res = await deps.publish(release)
    if (res.status === 'rejected') throw res.error
    return {
      model: m.model,
      version: m.version,
      seq: m.seq,
      digest: out.value.digest,
      new_release: res.status === 'accepted',
      blocks_imported: staged.size,
      blocks_held: blocks.length - staged.size,
      bytes_imported: progress.bytes,
    }
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

/** Applies the upgrade this feed needs, then each staged block with its proof. */
async function applyFeed(
  core: Awaited<ReturnType<ModelStore['feed']>>,
  length: number,
  proofs: FeedProof[],
  blocks: number[],
  value: (block: number) => Promise<Buffer>,
): Promise<void> {
  const apply = async (p: FeedProof, v?: Buffer) => {
    let ok: boolean
    try {
      ok = await applyProof(core, p, v)
    } catch (err) {
      throw new BundleError('ERR_BUNDLE_PROOF', BUNDLE_PROOFS_FILE, (err as Error).message, { cause: err })
    }
    if (!ok) fail('ERR_BUNDLE_PROOF', BUNDLE_PROOFS_FILE, `proof of ${p.block ?? 'the upgrade'} not applicable`)
  }
  if (core.length < length) {
    const up = proofs.find((p) => p.upgrade?.start === core.length && p.block === undefined)
    if (up === undefined)
      fail('ERR_BUNDLE_FEED_STATE', BUNDLE_PROOFS_FILE, `no upgrade from this node's feed length ${core.length}`)
    else await apply(up)
  }
  for (const b of blocks) {
    const p = proofs.find((x) => x.block === b && x.upgrade === undefined)
    if (p === undefined) return fail('ERR_BUNDLE_PROOF', BUNDLE_PROOFS_FILE, `no proof of block ${b}`)
    await apply(p, await value(b))
  }
}

function parseHead(bytes: Buffer): ImportHead {
  let json: unknown
  try {
    json = JSON.parse(bytes.toString('utf8'))
  } catch {
    return fail('ERR_BUNDLE_FORMAT', BUNDLE_INDEX_FILE, 'not JSON')
  }
  const head = ImportHead.safeParse(json)
  if (!head.success) return fail('ERR_BUNDLE_FORMAT', BUNDLE_INDEX_FILE, head.error.issues[0]?.message ?? 'invalid')
  return head.data
}
