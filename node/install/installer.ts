/**
 * Installer: prestages releases (compatibility + disk checks, fetch of missing blocks, assembly,
 * verification) and switches versions atomically. Per model:
 *
 *   announced → refused                      (incompatible, too little disk; reason kept for /status)
 *   announced → downloading → staged         (verified model.gguf on disk)
 *   staged → active (activate), old active → previous
 *   active → previous restored (rollback);   previous dropped when the new one is declared healthy
 *   active → none (deactivate)               a bad version with nothing to go back to: `active` and
 *                                            `previous` links removed; the files stay until GC
 *
 * Crash safety: a `model.gguf` is only ever created by renaming a verified staging file; `active`
 * and `previous` only change by rename(2) of a fresh symlink. `start()` deletes partials and tmp
 * links left by a crash; blocks already fetched persist in the staging file (the corestore keeps
 * their tree and bitfield), so prestaging the same release again resumes the download (staging.ts).
 *
 * Fault isolation: GC removes versions one by one; a version that cannot be removed (or blocks
 * that cannot be freed) is a `gc` loop error (counted, logged once per change) and the next one is
 * tried. A model whose state cannot be read is left out of `status()` (a `gc` loop error too)
 * instead of hiding every other model.
 *
 * Parts: downloads.ts (downloads in flight: fetch, assembly, progress), installed-versions.ts
 * (what is on disk, crash leftovers), model-locks.ts (one operation per model at a time), prune.ts
 * (GC), layout.ts (paths, atomic links).
 */
import { statfs as fsStatfs, mkdir, rm } from 'node:fs/promises'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { Logger } from '../logger.ts'
import { blockInventory, releaseBlocks } from '../store/fetcher.ts'
import type { ModelStore } from '../store/model-store.ts'
import { type Faults, LoopErrors } from '../telemetry/faults.ts'
import { adoptInstalled, releaseInstalled } from './adopt.ts'
import { checkCompatibility, checkDisk, type DeviceEnv, readDeviceEnv } from './compat.ts'
import { KEEP_VERSIONS, MAX_REFUSALS } from './constants.ts'
import { Downloads } from './downloads.ts'
import { InstallError, InstallerStoppedError } from './errors.ts'
import { cleanLeftovers, installedManifest, installedVersions, newestFirst } from './installed-versions.ts'
import { allocatedBytes, atomicSymlink, InstallLayout, listDir, readVersionLink, removeLink } from './layout.ts'
import { ModelLocks } from './model-locks.ts'
import type { DownloadStatus } from './progress.ts'
import { collectVersions, retention } from './prune.ts'
import { recoverStaging } from './staging.ts'
import { collectStaleDownloads } from './staging-gc.ts'

/** What the installer uses. */
export interface InstallerComponents {
  store: ModelStore
  logger: Logger
  /** Where GC's faults go (default: a set of its own, `installer.loops`). */
  loops?: LoopErrors
}

/** Options. */
export interface InstallerInit {
  /** The node's data directory (models go to `<dataDir>/models`). */
  dataDir: string
  /** Versions kept per model by GC; default `KEEP_VERSIONS`. */
  keepVersions?: number
  /** Overrides of device facts (tests). */
  env?: Partial<Omit<DeviceEnv, 'freeDiskBytes'>>
  /**
   * Keep one copy on disk: strip an installed version's blocks from the corestore and serve them from
   * its file, and free blocks only removed versions used (default true; writable feeds are never touched).
   */
  pruneBlocks?: boolean
  /** A download with no block for this long is logged as stalled, ms (default `PROGRESS_STALL_MS`). */
  stallMs?: number
  /** statfs used for free-disk checks (tests inject one). */
  statfs?: (path: string) => Promise<{ bavail: number; bsize: number }>
}

/** Per-model state shown by /status. */
export interface ModelInstallState {
  active: string | null
  previous: string | null
  /** Verified versions on disk, newest first. */
  staged: string[]
  downloading: DownloadStatus | null
  refused: Array<{ version: string; code: string; reason: string }>
}

/** Installs, activates, rolls back and garbage-collects model versions. */
export class Installer {
  readonly layout: InstallLayout
  private readonly c: InstallerComponents
  private readonly keep: number
  private readonly pruneBlocks: boolean
  private readonly envOverride: InstallerInit['env']
  private readonly statfs: NonNullable<InstallerInit['statfs']>
  private readonly downloads: Downloads
  private readonly refused = new Map<string, ModelInstallState['refused']>()
  private readonly locks = new ModelLocks()
  private running = false
  /** The loop-error set holding GC's faults (`gc`). */
  readonly loops: LoopErrors
  private readonly faults: Faults

  constructor(components: InstallerComponents, init: InstallerInit) {
    this.c = components
    this.loops = components.loops ?? new LoopErrors()
    this.faults = this.loops.loop('gc', components.logger)
    this.layout = new InstallLayout(init.dataDir)
    this.keep = init.keepVersions ?? KEEP_VERSIONS
    this.pruneBlocks = init.pruneBlocks ?? true
    this.envOverride = init.env
    this.statfs = init.statfs ?? ((p) => fsStatfs(p))
    this.downloads = new Downloads(
      { store: components.store, logger: components.logger },
      { layout: this.layout, pruneBlocks: this.pruneBlocks, stallMs: init.stallMs },
    )
  }

  /** Creates the install root and removes crash leftovers (partials, tmp links). Idempotent. */
  async start(): Promise<void> {
    if (this.running) return
    await mkdir(this.layout.root, { recursive: true })
    await this.c.store.start()
    for (const model of await listDir(this.layout.root)) {
      try {
        await cleanLeftovers(this.layout, model)
        for (const v of await this.versions(model)) {
          const m = await this.installedManifest(model, v)
          if (m !== null) await adoptInstalled(this.c.store, this.layout, m, this.pruneBlocks)
        }
        await recoverStaging(this.c.store, this.layout, model) // a download cut short serves its blocks again
        await this.collectStale(model) // one superseded while the node was down will not resume
      } catch (err) {
        this.faults.fail(`${model} status`, err) // a stray entry never stops the installer
      }
    }
    this.running = true
  }

  /** Aborts downloads in flight. Idempotent. */
  async stop(): Promise<void> {
    this.running = false
    this.downloads.abortAll(() => new InstallerStoppedError())
    await this.locks.settled()
  }

  /** Device facts, with overrides applied. */
  async env(): Promise<DeviceEnv> {
    return readDeviceEnv(this.layout.root, this.statfs, this.envOverride)
  }

  /**
   * Checks, downloads (missing blocks only), assembles and verifies a release, leaving it staged.
   * Resolves with the file path; throws `InstallError` on refusal (also recorded for /status).
   */
  async prestage(m: ReleaseManifest): Promise<string> {
    const path = await this.stage(m)
    await this.gc(m.model).catch((err: unknown) => this.faults.fail(m.model, err))
    return path
  }

  private async stage(m: ReleaseManifest): Promise<string> {
    const file = this.layout.file(m.model, m.version)
    if ((await this.installedManifest(m.model, m.version)) !== null) return file
    // the device's facts are read while the feed opens (a device's first feed opens its store)
    const [env, core] = await Promise.all([this.env(), this.c.store.feed(m.chunks.feed)])
    const blocks = releaseBlocks(m.chunks)
    const { missing } = await blockInventory(core, blocks)
    const sizes = new Map(m.chunks.chunks.map((c) => [c.block, c.size]))
    const missingBytes = missing.reduce((s, b) => s + (sizes.get(b) ?? 0), 0)
    const staged = await allocatedBytes(this.layout.staging(m.model, m.version)) // a resumed download's
    const refusal = checkCompatibility(m, env) ?? checkDisk(m, staged, env.freeDiskBytes)
    if (refusal !== null) {
      this.refuse(m, refusal)
      throw refusal
    }
    return this.locks.run(m.model, async () => {
      if ((await this.installedManifest(m.model, m.version)) !== null) return file
      return this.downloads.run(m, { core, blocks, missing, sizes, missingBytes }, (err) => this.refuse(m, err))
    })
  }

  /**
   * Calls `listener` when a download stalls (no block for the stall period), and again while it
   * stays stalled (node/install/progress.ts). Returns the unsubscribe function.
   */
  onStall(listener: (model: string, version: string) => void): () => void {
    return this.downloads.onStall(listener)
  }

  /** Makes a staged version active (the old active becomes `previous`). */
  async activate(model: string, version: string): Promise<void> {
    await this.locks.run(model, async () => {
      if ((await this.installedManifest(model, version)) === null) {
        throw new InstallError('ERR_NOT_STAGED', `${model}@${version} is not staged`)
      }
      const active = await readVersionLink(this.layout.link(model, 'active'))
      if (active === version) return
      if (active !== null) await atomicSymlink(active, this.layout.link(model, 'previous'))
      await atomicSymlink(version, this.layout.link(model, 'active'))
      this.c.logger.info({ model, version, previous: active }, 'activated')
    })
  }

  /** The new active version is healthy: drop `previous` and collect garbage. */
  async markHealthy(model: string): Promise<void> {
    await this.locks.run(model, () => removeLink(this.layout.link(model, 'previous')))
    await this.gc(model).catch((err: unknown) => this.faults.fail(model, err))
  }

  /** Makes `previous` active again atomically. Returns the version now active. */
  async rollback(model: string): Promise<string> {
    return this.locks.run(model, async () => {
      const prev = await readVersionLink(this.layout.link(model, 'previous'))
      if (prev === null) throw new InstallError('ERR_NO_PREVIOUS', `${model} has no previous version to roll back to`)
      await atomicSymlink(prev, this.layout.link(model, 'active'))
      await removeLink(this.layout.link(model, 'previous'))
      this.c.logger.warn({ model, version: prev }, 'rolled back')
      return prev
    })
  }

  /**
   * Leaves the model with no active version (a bad version and nothing to go back to): removes
   * the `active` link (unlink(2): the link names the old version or nothing, never a partial
   * state), then `previous` if any, so a later activation never keeps a stale `previous`. The
   * version's files stay until GC, which may then remove them since no link names them: stop
   * whatever reads the file before calling this. Returns the version that was active (or null).
   */
  async deactivate(model: string): Promise<string | null> {
    return this.locks.run(model, async () => {
      const active = await readVersionLink(this.layout.link(model, 'active'))
      const previous = await readVersionLink(this.layout.link(model, 'previous'))
      if (active !== null) await removeLink(this.layout.link(model, 'active'))
      if (previous !== null) await removeLink(this.layout.link(model, 'previous'))
      if (active !== null) this.c.logger.warn({ model, version: active }, 'deactivated: no version is active')
      return active
    })
  }

  /** Versions of each model kept on disk (`keep_versions`). */
  get keepVersions(): number {
    return this.keep
  }

  /** Keeps at most `keepVersions` versions; never removes active, previous or a download in flight. */
  async gc(model: string): Promise<string[]> {
    return this.locks.run(model, async () => {
      const { remove, keep } = retention((await this.versions(model)).sort(newestFirst), this.keep, [
        await readVersionLink(this.layout.link(model, 'active')),
        await readVersionLink(this.layout.link(model, 'previous')),
        this.downloads.version(model),
      ])
      const removed = await collectVersions(
        { store: this.c.store, faults: this.faults, logger: this.c.logger },
        {
          model,
          remove,
          keep,
          pruneBlocks: this.pruneBlocks,
          manifest: (v) => this.installedManifest(model, v),
          release: (m) => releaseInstalled(this.c.store, this.layout, m),
          removeVersion: (v) => rm(this.layout.versionDir(model, v), { recursive: true, force: true }),
        },
      )
      await this.collectStale(model)
      return removed
    })
  }

  /** Drops `model`'s interrupted downloads that will not resume (staging-gc.ts). Under the model's lock. */
  private async collectStale(model: string): Promise<void> {
    const c = { store: this.c.store, faults: this.faults, logger: this.c.logger }
    await collectStaleDownloads(c, this.layout, model, await this.versions(model), this.downloads.version(model))
  }

  /** Path of the active model file, or null. */
  async activeFile(model: string): Promise<string | null> {
    const v = await readVersionLink(this.layout.link(model, 'active'))
    return v === null ? null : this.layout.file(model, v)
  }

  /** Per-model state for /status. */
  async status(): Promise<Record<string, ModelInstallState>> {
    const out: Record<string, ModelInstallState> = {}
    const models = new Set([...(await listDir(this.layout.root)), ...this.downloads.models(), ...this.refused.keys()])
    for (const model of models) {
      const d = this.downloads.progress(model)
      try {
        const staged = (await this.versions(model)).sort(newestFirst)
        const dl = d?.status()
        out[model] = {
          active: await readVersionLink(this.layout.link(model, 'active')),
          previous: await readVersionLink(this.layout.link(model, 'previous')),
          staged,
          // a staged version's download is over, though its blocks are still being handed to the
          // installed file (adoptInstalled): never both at once
          downloading: dl === undefined || staged.includes(dl.version) ? null : dl,
          refused: this.refused.get(model) ?? [],
        }
        this.faults.ok(`${model} status`)
      } catch (err) {
        this.faults.fail(`${model} status`, err) // one unreadable model never hides the others
      }
    }
    return out
  }

  /** The manifest of a verified installed version, or null. */
  installedManifest(model: string, version: string): Promise<ReleaseManifest | null> {
    return installedManifest(this.layout, model, version)
  }

  private versions(model: string): Promise<string[]> {
    return installedVersions(this.layout, model)
  }

  private refuse(m: ReleaseManifest, err: InstallError): void {
    const list = (this.refused.get(m.model) ?? []).filter((r) => r.version !== m.version)
    list.push({ version: m.version, code: err.code, reason: err.message })
    this.refused.set(m.model, list.slice(-MAX_REFUSALS))
    this.c.logger.warn({ model: m.model, version: m.version, code: err.code }, err.message)
  }
}
