/**
 * Exporting a release as a bundle (protocols/release-bundle.ts) from any node that holds it,
 * device or seed. The node answers with the bundle's small files (the release envelope as
 * stored, the TrustRoot envelopes it stores, the feed proofs) and then serves each chunk file by
 * its hash; the CLI writes them (cli/commands/release-bundle.ts), so the files on the stick belong
 * to the operator, a half-copied directory resumes, and `--api` may name a node across the LAN.
 *
 * A chunk is read through the lineage feed (`core.get`), which answers from the corestore or
 * from the installed model file (node/store/file-blocks.ts), and its hash is checked before it
 * is sent: a node never exports a byte that does not match the signed chunk index.
 */
import { createHash } from 'node:crypto'
import { LlmeshError } from '../../protocols/errors.ts'
import {
  BUNDLE_FORMAT,
  BUNDLE_TRUST_DIR,
  BundleError,
  type BundleIndex,
  encodeFrames,
} from '../../protocols/release-bundle.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { MessageStore } from '../mesh/message-store.ts'
import type { StoredMessage } from '../mesh/types.ts'
import { exportProofs } from '../store/feed-proofs.ts'
import { releaseBlocks } from '../store/fetcher.ts'
import type { ModelStore } from '../store/model-store.ts'

/** The release asked for is not held here (404 ERR_UNKNOWN_RELEASE). */
export class UnknownReleaseError extends LlmeshError {
  constructor(what: string) {
    super('ERR_UNKNOWN_RELEASE', `${what} is not a release this node holds`)
    this.name = 'UnknownReleaseError'
  }
}

/** What exporting reads. */
export interface ExportSource {
  store: ModelStore
  messages: MessageStore
  /** This node's peer id (recorded in the index). */
  self: string
  now?: () => number
}

/** The small files of a bundle; chunk files are read with `readChunk`. */
export interface ExportPlan {
  index: BundleIndex
  release: Uint8Array
  trust: { file: string; wire: Uint8Array }[]
  proofs: Uint8Array
  manifest: ReleaseManifest
}

/** The stored release `model@version`, or UnknownReleaseError. */
export function heldRelease(messages: MessageStore, model: string, version: string): StoredMessage<ReleaseManifest> {
  const r = messages.releases().find((m) => m.message.model === model && m.message.version === version)
  if (r === undefined) throw new UnknownReleaseError(`${model}@${version}`)
  return r
}

/**
 * Plans a bundle of `model@version`; with `since`, only the chunks a holder of that version
 * lacks. Refuses (ERR_RELEASE_INCOMPLETE) when this node does not hold every block.
 */
export async function planExport(src: ExportSource, model: string, version: string, since?: string) {
  const r = heldRelease(src.messages, model, version)
  const m = r.message
  const core = await src.store.feed(m.chunks.feed)
  const blocks = releaseBlocks(m.chunks)
  let missing = 0
  for (const b of blocks) if (b >= core.length || !(await core.has(b))) missing++
  if (missing > 0)
    throw new LlmeshError(
      'ERR_RELEASE_INCOMPLETE',
      `${model}@${version}: this node lacks ${missing} of its ${blocks.length} blocks (export from a node that installed it)`,
    )
  const old = since === undefined ? undefined : heldRelease(src.messages, model, since).message
  const had = new Set(old?.chunks.feed === m.chunks.feed ? old.chunks.chunks.map((c) => c.hash) : [])
  const chunks = new Map<string, number>()
  for (const c of m.chunks.chunks) if (!had.has(c.hash)) chunks.set(c.hash, c.size)
  // upgrades from the lengths sites of this lineage may hold: every release's feed length
  const starts = src.messages
    .releases()
    .filter((x) => x.message.chunks.feed === m.chunks.feed)
    .map((x) => x.message.chunks.feed_length)
  const proofs = await exportProofs(core, blocks, starts)
  const trust = src.messages
    .list('TrustRoot')
    .sort((a, b) => a.message.version - b.message.version)
    .map((t, i) => ({ file: `${BUNDLE_TRUST_DIR}/${t.message.version}-${i}.json`, wire: t.bytes }))
  const index: BundleIndex = {
    type: 'ReleaseBundle',
    format: BUNDLE_FORMAT,
    fleet: m.fleet,
    model,
    version,
    seq: m.seq,
    digest: r.digest,
    ...(since !== undefined ? { since } : {}),
    trust: trust.map((t) => t.file),
    feed: { key: m.chunks.feed, length: proofs.length },
    chunks: [...chunks.keys()],
    bytes: [...chunks.values()].reduce((a, b) => a + b, 0),
    exported_at: (src.now ?? Date.now)(),
    exported_by: src.self,
  }
  return { index, release: r.bytes, trust, proofs: encodeFrames(proofs.frames), manifest: m } satisfies ExportPlan
}

/** The bytes of chunk `hash` of the release, checked against the signed chunk index. */
export async function readChunk(store: ModelStore, m: ReleaseManifest, hash: string): Promise<Buffer> {
  const c = m.chunks.chunks.find((x) => x.hash === hash)
  if (c === undefined) throw new UnknownReleaseError(`chunk ${hash} of ${m.model}@${m.version}`)
  const core = await store.feed(m.chunks.feed)
  const data = await core.get(c.block, { wait: false })
  if (data === null || createHash('sha256').update(data).digest('hex') !== hash)
    throw new BundleError('ERR_DIGEST_MISMATCH', `chunks/${hash}`, 'this node holds no intact copy of the chunk')
  return data
}
