/**
 * The installer's downloads in flight (installer.ts), one per model: the version being fetched,
 * its progress (progress.ts, with stall notices) and its abort. A download opens the release's
 * staging file (staging.ts: blocks already held are copied in), fetches the missing blocks straight
 * into it, verifies it, renames it to `model.gguf` and adopts the installed version, leaving it staged.
 */
import type Hypercore from 'hypercore'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { Logger } from '../logger.ts'
import { fetchRelease } from '../store/fetcher.ts'
import type { ModelStore } from '../store/model-store.ts'
import { adoptInstalled } from './adopt.ts'
import { InstallError } from './errors.ts'
import type { InstallLayout } from './layout.ts'
import { DownloadProgress } from './progress.ts'
import { abandonStaging, finishStaging, openStaging } from './staging.ts'

/** System errors that mean the disk (or the quota) is full. */
const DISK_FULL = new Set(['ENOSPC', 'EDQUOT'])

/** `err` as ERR_INSUFFICIENT_DISK when it is a full disk, else null. */
function diskFull(err: unknown, m: ReleaseManifest): InstallError | null {
  const code = (err as NodeJS.ErrnoException).code
  if (code === undefined || !DISK_FULL.has(code)) return null
  return new InstallError(
    'ERR_INSUFFICIENT_DISK',
    `${m.model}@${m.version}: the disk filled up while writing the ${m.file.size}-byte file (${code}); the partial file was removed, the active version is untouched`,
    { cause: err },
  )
}

/** What the downloads use. */
export interface DownloadsComponents {
  store: ModelStore
  logger: Logger
}

/** Options (the installer's). */
export interface DownloadsInit {
  layout: InstallLayout
  /** Strip the installed version's blocks from the corestore (see InstallerInit.pruneBlocks). */
  pruneBlocks: boolean
  /** A download with no block for this long is logged as stalled, ms (default `PROGRESS_STALL_MS`). */
  stallMs?: number
}

/** What a download starts from: the release's feed, its blocks, those missing and their sizes. */
export interface DownloadPlan {
  core: Hypercore
  blocks: number[]
  missing: number[]
  /** Chunk size by block. */
  sizes: Map<number, number>
  missingBytes: number
}

/** The downloads in flight, by model. */
export class Downloads {
  private readonly c: DownloadsComponents
  private readonly init: DownloadsInit
  private readonly active = new Map<string, { version: string; progress: DownloadProgress; abort: AbortController }>()
  private readonly stallListeners = new Set<(model: string, version: string) => void>()

  constructor(components: DownloadsComponents, init: DownloadsInit) {
    this.c = components
    this.init = init
  }

  /** Models with a download in flight. */
  models(): Iterable<string> {
    return this.active.keys()
  }

  /** The version of `model` being downloaded, if any. */
  version(model: string): string | undefined {
    return this.active.get(model)?.version
  }

  /** The progress of `model`'s download, if one is in flight (its `status()` is /status's `downloading`). */
  progress(model: string): DownloadProgress | undefined {
    return this.active.get(model)?.progress
  }

  /** Aborts every download in flight with the error `reason()` makes. */
  abortAll(reason: () => Error): void {
    for (const d of this.active.values()) d.abort.abort(reason())
  }

  /** Calls `listener` when a download stalls, and again while it stays stalled. Returns the unsubscribe function. */
  onStall(listener: (model: string, version: string) => void): () => void {
    this.stallListeners.add(listener)
    return () => this.stallListeners.delete(listener)
  }

  /**
   * Downloads `m` (its missing blocks), assembles and verifies it, adopts it: resolves with the
   * file path. A failed check (InstallError, digest mismatch) goes to `refused` before it is thrown.
   */
  async run(m: ReleaseManifest, plan: DownloadPlan, refused: (err: InstallError) => void): Promise<string> {
    const { core, blocks, missing, sizes, missingBytes } = plan
    const abort = new AbortController()
    const bytesTotal = [...sizes.values()].reduce((a, b) => a + b, 0)
    const progress = new DownloadProgress(this.c.logger, {
      model: m.model,
      version: m.version,
      blocksHave: blocks.length - missing.length,
      blocksTotal: blocks.length,
      bytesHave: bytesTotal - missingBytes,
      bytesTotal,
      stallMs: this.init.stallMs,
      onStall: () => {
        for (const l of this.stallListeners) l(m.model, m.version)
      },
    })
    this.active.set(m.model, { version: m.version, progress, abort })
    const { store } = this.c
    const { layout } = this.init
    let staging: Awaited<ReturnType<typeof openStaging>> | null = null
    try {
      this.c.logger.info(
        {
          model: m.model,
          version: m.version,
          missing: missing.length,
          total: blocks.length,
          missing_bytes: missingBytes,
        },
        'fetching release',
      )
      staging = await openStaging(store, layout, core, m)
      staging.onError = (err) => abort.abort(err) // a full disk stops the download at once
      // blocks go straight into the staging file; its whole-file sha256 is checked once they are in
      await fetchRelease(store, m.chunks, {
        verifyChunks: false,
        signal: abort.signal,
        onBlock: (bytes, peer) => progress.block(bytes, peer),
      })
      this.c.logger.debug({ model: m.model, version: m.version }, 'release fetched')
      const path = await finishStaging(store, layout, core, m, staging)
      await adoptInstalled(store, layout, m, this.init.pruneBlocks)
      store.releaseFile(m.chunks.feed, staging.path) // its bytes are read from model.gguf now
      this.c.logger.info({ model: m.model, version: m.version }, 'release staged')
      return path
    } catch (e) {
      const err = diskFull(e, m) ?? e
      const code = (err as { code?: string }).code
      if (code === 'ERR_DIGEST_MISMATCH' || code === 'ERR_INSUFFICIENT_DISK') {
        // a refused release (or a full disk) leaves nothing behind; anything else is resumed later
        await abandonStaging(store, layout, core, m, staging).catch(() => {})
      } else if (staging !== null) {
        store.files.clearSink(m.chunks.feed, staging)
        await staging.close()
      }
      if (err instanceof InstallError || code === 'ERR_DIGEST_MISMATCH') refused(err as InstallError)
      throw err
    } finally {
      progress.stop()
      this.active.delete(m.model)
    }
  }
}
