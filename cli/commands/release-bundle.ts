/**
 * `llmesh release export <model@version> --out <dir> [--since <version>]` and
 * `llmesh release import <dir>`: release bundles on removable media (protocols/release-bundle.ts).
 *
 * Export runs here, in the CLI, over the API of any node that holds the release (`--api`, default
 * the local one): the node answers the bundle's small files and serves each chunk, checked against
 * its hash; the CLI writes them into `<dir>`, so the files belong to the operator (not to the
 * daemon's user), the stick may be mounted on another machine than the node, and a half-copied
 * directory resumes: a chunk file already there with the right hash is kept (chunk files are
 * named by their sha256, so `cp -n`/rsync of two bundles of one lineage share them).
 *
 * Import streams the directory to the node (`POST /releases/import`), which verifies everything
 * before it stores anything; a refusal names the bundle file and the reason.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { Command } from 'commander'
import { ApiClient } from '../api-client.ts'
import { nodeApiOptions } from '../api-transport.ts'
import { action, CliError, mib, type OutputOptions, print } from '../output.ts'
import { splitRef } from './release-get.ts'

/** Options of `release export`. */
export interface ExportOptions extends OutputOptions {
  api?: string
  data?: string
  out: string
  since?: string
}

/** Options of `release import`. */
export interface ImportOptions extends OutputOptions {
  api?: string
  data?: string
}

/** Progress lines on stderr: a line per tenth of the work (every line on a terminal), none with --json. */
function progress(opts: OutputOptions, verb: string, totalChunks: number, totalBytes: number) {
  let lastTenth = -1
  return (chunks: number, bytes: number) => {
    if (opts.json === true) return
    const tenth = totalBytes === 0 ? 10 : Math.floor((bytes * 10) / totalBytes)
    if (!process.stderr.isTTY && tenth === lastTenth && chunks !== totalChunks) return
    lastTenth = tenth
    const line = `${verb} ${chunks}/${totalChunks} chunks, ${mib(bytes)} of ${mib(totalBytes)}`
    process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`)
  }
}

async function sha256Of(path: string): Promise<string | undefined> {
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex')
  } catch {
    return undefined
  }
}

/** What `writeBundle` writes: the export answer of a node. */
export interface BundlePlan {
  index: unknown
  release: string
  trust: { file: string; wire: string }[]
  proofs: string
}

/**
 * Writes a bundle directory from a node's export answer, fetching each chunk not already there
 * (with the right hash) through `chunk`. The small files go last: a directory with bundle.json
 * is a finished copy. Returns the index and what was written.
 */
export async function writeBundle(
  out: string,
  plan: BundlePlan,
  chunk: (hash: string) => Promise<Uint8Array>,
  onProgress?: (chunks: number, bytes: number) => void,
) {
  const b = await import('../../protocols/release-bundle.ts')
  const parsed = b.BundleIndex.safeParse(plan.index)
  if (!parsed.success) throw new CliError('the node sent an invalid bundle index', 'ERR_SCHEMA')
  const index = parsed.data
  await mkdir(join(out, b.BUNDLE_CHUNKS_DIR), { recursive: true })
  await mkdir(join(out, b.BUNDLE_TRUST_DIR), { recursive: true })
  let done = 0
  let bytes = 0
  let kept = 0
  for (const hash of index.chunks) {
    const path = join(out, b.chunkFile(hash))
    if ((await sha256Of(path)) === hash) kept++
    else {
      const data = await chunk(hash)
      if (createHash('sha256').update(data).digest('hex') !== hash)
        throw new CliError(
          `${b.chunkFile(hash)}: the node sent bytes that do not match the chunk hash`,
          'ERR_DIGEST_MISMATCH',
        )
      await writeFile(`${path}.partial`, data)
      await rename(`${path}.partial`, path)
    }
    done++
    bytes += (await stat(path)).size
    onProgress?.(done, bytes)
  }
  for (const t of plan.trust) await writeFile(join(out, t.file), Buffer.from(t.wire, 'base64'))
  await writeFile(join(out, b.BUNDLE_PROOFS_FILE), Buffer.from(plan.proofs, 'base64'))
  await writeFile(join(out, b.BUNDLE_RELEASE_FILE), Buffer.from(plan.release, 'base64'))
  await writeFile(join(out, b.BUNDLE_INDEX_FILE), `${JSON.stringify(index, null, 2)}\n`)
  return { index, bytes, kept }
}

/** Writes the bundle of `ref` into `opts.out`. */
export async function releaseExport(ref: string, opts: ExportOptions): Promise<void> {
  const { model, version } = splitRef(ref)
  const client = await ApiClient.connect(opts)
  const plan = await client.releaseExport(model, version, opts.since)
  const total = plan.index as { chunks?: unknown[]; bytes?: number }
  const show = progress(opts, 'exported', total.chunks?.length ?? 0, total.bytes ?? 0)
  const { index, bytes, kept } = await writeBundle(
    opts.out,
    plan,
    (hash) => client.releaseChunk(model, version, hash),
    show,
  )
  if (opts.json !== true && process.stderr.isTTY) process.stderr.write('\n')
  const o = {
    model,
    version,
    seq: index.seq,
    digest: index.digest,
    out: opts.out,
    chunks: index.chunks.length,
    bytes,
    kept,
  }
  print(opts, { ...o, since: index.since }, (x) =>
    [
      `exported ${x.model}@${x.version} (seq ${x.seq}) to ${x.out}`,
      `  chunks   ${x.chunks} (${mib(x.bytes)})${x.kept > 0 ? `, ${x.kept} already there` : ''}${x.since ? `, only what a holder of ${x.since} lacks` : ''}`,
      `  digest   ${x.digest}`,
      `  import on a node of the other site with: llmesh release import ${x.out} [--api <node>]`,
    ].join('\n'),
  )
}

/**
 * The import upload of the bundle in `dir` (protocols/release-bundle.ts): the head (index and
 * small files, base64), then a frame per chunk file the index lists. A missing chunk file is
 * left out: the node names it if the release needs it. Refusals of the files read here name them.
 */
export async function bundleUpload(dir: string, onProgress?: (chunks: number, bytes: number) => void) {
  const b = await import('../../protocols/release-bundle.ts')
  const read = async (file: string, max: number): Promise<Buffer> => {
    const path = join(dir, file)
    const st = await stat(path).catch(() => undefined)
    if (st === undefined) throw new CliError(`${file}: missing from the bundle directory ${dir}`, 'ERR_BUNDLE_FORMAT')
    if (st.size > max)
      throw new CliError(`${file}: ${st.size} bytes, larger than a bundle allows`, 'ERR_BUNDLE_TOO_LARGE')
    return readFile(path)
  }
  const indexBytes = await read(b.BUNDLE_INDEX_FILE, b.MAX_BUNDLE_META_BYTES)
  let index: ReturnType<typeof b.BundleIndex.parse>
  try {
    index = b.BundleIndex.parse(JSON.parse(indexBytes.toString('utf8')))
  } catch (err) {
    throw new CliError(
      `${b.BUNDLE_INDEX_FILE}: not a bundle index (${(err as Error).message.slice(0, 200)})`,
      'ERR_BUNDLE_FORMAT',
    )
  }
  const head = {
    index,
    release: (await read(b.BUNDLE_RELEASE_FILE, b.MAX_BUNDLE_META_BYTES)).toString('base64'),
    trust: await Promise.all(
      index.trust.map(async (file) => ({ file, wire: (await read(file, b.MAX_BUNDLE_META_BYTES)).toString('base64') })),
    ),
  }
  const proofs = await read(b.BUNDLE_PROOFS_FILE, b.MAX_PROOFS_FILE_BYTES)
  const headBytes = Buffer.from(JSON.stringify(head))
  async function* body(): AsyncGenerator<Uint8Array> {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(headBytes.byteLength)
    yield len
    yield headBytes
    const plen = Buffer.alloc(4)
    plen.writeUInt32BE(proofs.byteLength)
    yield plen
    yield proofs
    let chunks = 0
    let bytes = 0
    for (const hash of index.chunks) {
      const data = await readFile(join(dir, b.chunkFile(hash))).catch(() => undefined)
      if (data === undefined) continue
      yield b.chunkFrameHeader(hash, data.byteLength)
      yield data
      chunks++
      bytes += data.byteLength
      onProgress?.(chunks, bytes)
    }
  }
  return { index, body: body() }
}

/** Streams the bundle in `dir` to the node, which verifies and stores it. */
export async function releaseImport(dir: string, opts: ImportOptions): Promise<void> {
  let show: ((chunks: number, bytes: number) => void) | undefined
  const upload = await bundleUpload(dir, (c, n) => show?.(c, n))
  show = progress(opts, 'imported', upload.index.chunks.length, upload.index.bytes)
  const client = await ApiClient.connect(opts)
  const out = await client.releaseImport(Readable.toWeb(Readable.from(upload.body)) as unknown as ReadableStream)
  if (opts.json !== true && process.stderr.isTTY) process.stderr.write('\n')
  print(opts, out, (o) =>
    [
      `imported ${o.model}@${o.version} (seq ${o.seq})${o.new_release ? '' : ' (the release was already known here)'}`,
      `  blocks   ${o.blocks_imported} stored from the bundle, ${o.blocks_held} already held (${mib(o.bytes_imported)} read)`,
      `  digest   ${o.digest}`,
      '  the mesh now announces it and rolls it out under its policy: llmesh rollout status',
    ].join('\n'),
  )
}

/** Registers `release export` and `release import` (`--api`/`--data`/`--json`: any node, not only the seed). */
export function registerReleaseBundle(release: Command): void {
  nodeApiOptions(
    release
      .command('export <model@version>')
      .description('write a verifiable release bundle (for removable media) from any node that holds it')
      .requiredOption('--out <dir>', 'bundle directory (created; an existing one is resumed)')
      .option('--since <version>', 'only the chunks a node holding <version> lacks'),
  ).action(action(releaseExport))
  nodeApiOptions(
    release
      .command('import <dir>')
      .description('verify a release bundle offline and hand it to the mesh (no seed, no operator key needed)'),
  ).action(action(releaseImport))
}
