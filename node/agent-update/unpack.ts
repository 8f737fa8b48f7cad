/**
 * Installing a verified agent package beside the running version: the package's blocks are
 * fetched from peers like a model's (node/store/fetcher.ts: hypercore-verified blocks, each
 * chunk's sha256 checked), written out in order (node/install/assemble.ts `writeChunks`), the
 * whole file's sha256 and size checked against the signed manifest, then unpacked with `tar`
 * into `<root>/.<version>.partial` and its one top directory (`llmesh-<v>-linux-<arch>/`) renamed
 * to `<root>/<version>`. Nothing here touches `current`. A version directory therefore always
 * holds a whole, verified package.
 *
 * The fetch reports its progress like a model download (node/install/progress.ts: a log line every
 * 10 %, a stall notice) and a stall calls `onStall`, on which the daemon restarts its replication
 * sessions, as for models: a peer hypercore paused (several no-data replies, e.g. a seed declining
 * duplicate requests) is otherwise never asked again for the life of the session.
 */
import { execFile } from 'node:child_process'
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import type { AgentPackage, AgentRelease } from '../../protocols/schemas/index.ts'
import { writeSynced } from '../durable-file.ts'
import { hashFile, writeChunks } from '../install/assemble.ts'
import { InstallError } from '../install/errors.ts'
import { DownloadProgress } from '../install/progress.ts'
import type { Logger } from '../logger.ts'
import { fetchRelease } from '../store/fetcher.ts'
import type { ModelStore } from '../store/model-store.ts'
import { AGENT_ENTRY, AGENT_RELEASE_FILE, UNPACK_TIMEOUT_MS } from './constants.ts'

const run = promisify(execFile)

/** Fetches, verifies and unpacks `pkg` of `release` into `<root>/<version>`; returns that directory. */
export async function installAgentPackage(
  store: ModelStore,
  root: string,
  release: AgentRelease,
  pkg: AgentPackage,
  signal?: AbortSignal,
  watch: { logger?: Logger; onStall?: () => void; stallMs?: number } = {},
): Promise<string> {
  const final = join(root, release.version)
  if (await exists(join(final, AGENT_ENTRY))) return final // unpacked earlier (e.g. before a crash)
  await mkdir(root, { recursive: true })
  const file = join(root, `.${release.version}.tar.gz.partial`)
  const partial = join(root, `.${release.version}.partial`)
  try {
    let progress: DownloadProgress | undefined
    const core = await fetchRelease(store, pkg.chunks, {
      signal,
      onProgress: (p) => {
        if (progress !== undefined || watch.logger === undefined) return
        const bytesHave = Math.round((pkg.size * p.blocksHave) / Math.max(1, p.blocksTotal))
        progress = new DownloadProgress(watch.logger, {
          ...{ model: AGENT_LINEAGE, version: release.version, blocksHave: p.blocksHave, blocksTotal: p.blocksTotal },
          ...{ bytesHave, bytesTotal: pkg.size, onStall: watch.onStall, stallMs: watch.stallMs },
        })
      },
      onBlock: (bytes, peer) => progress?.block(bytes, peer),
    }).finally(() => progress?.stop())
    await writeChunks(file, core, pkg.chunks.chunks)
    const got = await hashFile(file)
    if (got.sha256 !== pkg.sha256 || got.size !== pkg.size) {
      throw new InstallError(
        'ERR_DIGEST_MISMATCH',
        `agent ${release.version}: package sha256 ${got.sha256} (${got.size} bytes) is not the signed ${pkg.sha256} (${pkg.size} bytes)`,
      )
    }
    await rm(partial, { recursive: true, force: true })
    await mkdir(partial)
    // --no-same-owner: files belong to the agent's user; tar refuses absolute names and `..` by default
    await run('tar', ['-xzf', file, '-C', partial, '--no-same-owner'], { timeout: UNPACK_TIMEOUT_MS, signal })
    const top = await readdir(partial)
    const dir = top.length === 1 ? join(partial, top[0]) : partial
    if (!(await exists(join(dir, AGENT_ENTRY))))
      throw new InstallError('ERR_DIGEST_MISMATCH', `agent ${release.version}: the package has no ${AGENT_ENTRY}`)
    await writeSynced(join(dir, AGENT_RELEASE_FILE), JSON.stringify(release), 0o644)
    await rm(final, { recursive: true, force: true })
    await rename(dir, final)
    return final
  } finally {
    await rm(file, { force: true }).catch(() => {})
    await rm(partial, { recursive: true, force: true }).catch(() => {})
  }
}

async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => null)) !== null
}
