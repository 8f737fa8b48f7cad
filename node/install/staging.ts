/**
 * A release downloaded straight into its file (issue #17 goal 2): the installer's side of
 * node/store/staging-file.ts. Instead of storing blocks in the corestore and assembling the file
 * from them afterwards, the download writes each verified block into `model.gguf.download` at its
 * offsets; installing it is then a whole-file sha256 check, an fsync and a rename.
 *
 *   openStaging    the signed manifest goes to `download.json` (synced) before the staging file
 *                  exists; blocks the node already holds (an earlier version's, reused by delta; or a
 *                  resumed download's) are checked against their chunk's sha256 and copied in; a
 *                  block the bitfield claims whose bytes are wrong or gone (a crash, a power loss) is
 *                  cleared from the feed and fetched again. The file is then registered as a source
 *                  of the feed's blocks (peers are served from it during the download) and as the
 *                  feed's sink.
 *   finishStaging  whole-file sha256 and size against the signed manifest (and fsync, in parallel),
 *                  then `manifest.json` (synced) and the rename to `model.gguf`.
 *   abandonStaging a refused release or a full disk: the file and what only it held are dropped.
 *   recoverStaging at installer start, a download cut by a crash is registered again for reads, and
 *                  resumed when the release is prestaged again.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type Hypercore from 'hypercore'
import { type ChunkRef, ReleaseManifest } from '../../protocols/schemas/index.ts'
import { writeSynced } from '../durable-file.ts'
import { blockRuns } from '../store/block-runs.ts'
import { blockInventory, releaseBlocks } from '../store/fetcher.ts'
import type { ModelStore } from '../store/model-store.ts'
import { StagingFile } from '../store/staging-file.ts'
import { ASSEMBLE_READ_AHEAD, MANIFEST_FILE, MODEL_FILE, STAGING_FILE, STAGING_MANIFEST } from './constants.ts'
import { InstallError } from './errors.ts'
import { fsyncDir, type InstallLayout, listDir } from './layout.ts'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

function mismatch(c: ChunkRef, got: Buffer): InstallError | null {
  if (got.byteLength !== c.size) {
    return new InstallError(
      'ERR_DIGEST_MISMATCH',
      `block ${c.block} holds ${got.byteLength} bytes, the signed chunk ${c.hash} has ${c.size}`,
    )
  }
  if (sha256(got) !== c.hash) {
    return new InstallError('ERR_DIGEST_MISMATCH', `block ${c.block} does not match chunk hash ${c.hash}`)
  }
  return null
}

/** Runs `fn` over `items` with at most `n` in flight; rejects with the first failure. */
async function pool<T>(items: readonly T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++])
  }
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker))
}

/**
 * Opens (or resumes) `m`'s staging file, fills in the blocks the node holds, and makes it the
 * feed's sink and a source of its blocks. Throws ERR_DIGEST_MISMATCH when a held block does not
 * match its signed chunk (the manifest and the feed disagree).
 */
export async function openStaging(
  store: ModelStore,
  layout: InstallLayout,
  core: Hypercore,
  m: ReleaseManifest,
): Promise<StagingFile> {
  const feed = m.chunks.feed
  const path = layout.staging(m.model, m.version)
  const mpath = layout.stagingManifest(m.model, m.version)
  await mkdir(layout.versionDir(m.model, m.version), { recursive: true })
  // the manifest is on disk before any block is: after a crash the file can be served and resumed
  await writeSynced(`${mpath}.tmp`, JSON.stringify(m), 0o644)
  await rename(`${mpath}.tmp`, mpath)
  await fsyncDir(layout.versionDir(m.model, m.version))
  store.files.unregister(feed, path) // below, a held block is read from anywhere but this file
  const { file, existed } = await StagingFile.open(path, m.chunks.chunks)
  // from here on every verified block of the release goes to the file, whatever else is running
  store.files.setSink(feed, file)
  try {
    const { have } = await blockInventory(core, releaseBlocks(m.chunks))
    const chunkOf = new Map(m.chunks.chunks.map((c) => [c.block, c]))
    const lost = new Set<number>()
    await pool(have, ASSEMBLE_READ_AHEAD, async (block) => {
      const c = chunkOf.get(block) as ChunkRef
      if (existed && (await inPlace(file, c))) {
        file.placed.add(block) // resumed: already there
        return
      }
      if (!(await copyHeld(core, file, c))) {
        // the bitfield claims it, only this file held it, and the file lost it: fetch it again
        if (core.writable) throw new InstallError('ERR_DIGEST_MISMATCH', `block ${block} is not local`)
        lost.add(block)
      }
    })
    for (const [start, end] of blockRuns([...lost])) await core.clear(start, end)
  } catch (err) {
    store.files.clearSink(feed, file)
    await file.close()
    throw err
  }
  store.files.register(feed, path, m.chunks.chunks)
  return file
}

/** Whether every offset of `c`'s block in the file holds the chunk. */
async function inPlace(file: StagingFile, c: ChunkRef): Promise<boolean> {
  for (const offset of file.offsetsOf(c.block)) {
    if (mismatch(c, await file.read(offset, c.size)) !== null) return false
  }
  return true
}

/**
 * Copies the node's copy of `c`'s block (from the corestore or an installed file) into the file,
 * after checking it against the signed chunk. False when no copy is readable.
 */
async function copyHeld(core: Hypercore, file: StagingFile, c: ChunkRef): Promise<boolean> {
  const data = await core.get(c.block, { wait: false })
  if (data === null) return false
  const bad = mismatch(c, data)
  if (bad !== null) throw bad
  await file.copyIn(c.block, data)
  return true
}

/**
 * Verifies the staged file (whole-file sha256 and size against the signed manifest), writes
 * `manifest.json` and renames the file to `model.gguf`. Returns its path.
 */
export async function finishStaging(
  store: ModelStore,
  layout: InstallLayout,
  core: Hypercore,
  m: ReleaseManifest,
  file: StagingFile,
): Promise<string> {
  store.files.clearSink(m.chunks.feed, file)
  if (file.error !== null) throw file.error
  if (file.mismatch !== null) {
    const { block, got, want } = file.mismatch
    const c = m.chunks.chunks.find((x) => x.block === block)
    throw new InstallError(
      'ERR_DIGEST_MISMATCH',
      `block ${block} holds ${got} bytes, the signed chunk ${c?.hash ?? '?'} has ${want}`,
    )
  }
  // blocks that reached the corestore instead (a write batch begun before the sink was set)
  const chunkOf = new Map(m.chunks.chunks.map((c) => [c.block, c]))
  const gaps = [...chunkOf.keys()].filter((b) => !file.placed.has(b))
  await pool(gaps, ASSEMBLE_READ_AHEAD, async (b) => {
    const c = chunkOf.get(b) as ChunkRef
    if (!(await copyHeld(core, file, c))) throw new InstallError('ERR_DIGEST_MISMATCH', `block ${b} is not local`)
  })
  const [got] = await Promise.all([file.digest(), file.sync()])
  if (got.sha256 !== m.file.sha256 || got.size !== m.file.size) {
    const bad = await firstBadChunk(file, m.chunks.chunks)
    throw new InstallError(
      'ERR_DIGEST_MISMATCH',
      `${m.model}@${m.version}: assembled file sha256 ${got.sha256} (${got.size} bytes) does not match the signed ${m.file.sha256} (${m.file.size} bytes)${bad === null ? '' : `; block ${bad.block} does not match chunk hash ${bad.hash}`}`,
    )
  }
  const dir = layout.versionDir(m.model, m.version)
  const manifestTmp = join(dir, `${MANIFEST_FILE}.tmp`)
  // fsynced before the rename: after a crash manifest.json is whole or absent, never empty
  await writeSynced(manifestTmp, JSON.stringify(m), 0o644)
  await rename(manifestTmp, join(dir, MANIFEST_FILE))
  await file.close()
  const final = layout.file(m.model, m.version)
  await rename(file.path, final)
  await fsyncDir(dir)
  await rm(layout.stagingManifest(m.model, m.version), { force: true })
  return final
}

/** Drops a refused (or disk-full) download's staging file, clearing from the feed the blocks only it held. */
export async function abandonStaging(
  store: ModelStore,
  layout: InstallLayout,
  core: Hypercore,
  m: ReleaseManifest,
  file: StagingFile | null,
): Promise<void> {
  const path = layout.staging(m.model, m.version)
  if (file !== null) {
    store.files.clearSink(m.chunks.feed, file)
    await file.close()
  }
  store.files.unregister(m.chunks.feed, path)
  if (!core.writable) {
    const { have } = await blockInventory(core, releaseBlocks(m.chunks))
    const gone: number[] = []
    for (const b of have) if ((await core.get(b, { wait: false })) === null) gone.push(b)
    for (const [start, end] of blockRuns(gone)) await core.clear(start, end)
  }
  const dir = layout.versionDir(m.model, m.version)
  await rm(path, { force: true })
  await rm(layout.stagingManifest(m.model, m.version), { force: true })
  await rm(join(dir, `${MANIFEST_FILE}.tmp`), { force: true })
}

/**
 * The manifest in `model@version`'s `download.json`, or null when it is missing, unreadable, not a
 * release manifest (schema) or not this directory's release: a local file, but what it names is
 * registered as a source of a feed's blocks, so it is checked like any input.
 */
export async function readStagingManifest(
  layout: InstallLayout,
  model: string,
  version: string,
): Promise<ReleaseManifest | null> {
  const text = await readFile(layout.stagingManifest(model, version), 'utf8').catch(() => null)
  if (text === null) return null
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return null
  }
  const parsed = ReleaseManifest.safeParse(json)
  if (!parsed.success || parsed.data.model !== model || parsed.data.version !== version) return null
  return parsed.data
}

/**
 * At installer start: every version directory of `model` holding a download cut short gets its
 * staging file registered as a source of its blocks again (the bitfield claims them); leftovers of
 * finished downloads, and downloads whose `download.json` is unusable (nothing to resume from), are
 * removed.
 */
export async function recoverStaging(store: ModelStore, layout: InstallLayout, model: string): Promise<void> {
  for (const v of await listDir(layout.modelDir(model))) {
    const entries = await listDir(layout.versionDir(model, v))
    if (!entries.includes(STAGING_FILE) && !entries.includes(STAGING_MANIFEST)) continue
    const m = await readStagingManifest(layout, model, v)
    if (entries.includes(MODEL_FILE) || m === null || !entries.includes(STAGING_FILE)) {
      // finished (renamed), never started (the manifest is written first) or unusable: nothing to resume
      if (!entries.includes(MODEL_FILE)) await rm(layout.versionDir(model, v), { recursive: true, force: true })
      await rm(layout.staging(model, v), { force: true })
      await rm(layout.stagingManifest(model, v), { force: true })
      continue
    }
    store.files.register(m.chunks.feed, layout.staging(model, v), m.chunks.chunks)
  }
}

/** The first chunk whose bytes in the staging file do not hash to its sha256, or null. */
async function firstBadChunk(file: StagingFile, chunks: readonly ChunkRef[]): Promise<ChunkRef | null> {
  let offset = 0
  for (const c of chunks) {
    if (mismatch(c, await file.read(offset, c.size)) !== null) return c
    offset += c.size
  }
  return null
}
