/**
 * Prestager: fetches releases ahead of activation (devices, policy `prestage`): per model, the
 * newest release that is not bad. A failed fetch is tried again 10 s later (a peer with the
 * blocks may show up). One fetch per release at a time. A failure is one release's fault (the
 * `prestage` loop's Faults: counted, logged once per change); the other releases go on. A release
 * this device cannot take (another architecture, too little RAM or disk, another runtime) is no
 * fault: the device refuses it by design (shown in /status), logged once at warn level.
 */
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import type { Installer } from '../install/installer.ts'
import type { Logger } from '../logger.ts'
import type { Faults } from '../telemetry/faults.ts'
import { releaseKey } from './plan.ts'

/** Retry delay after a failed prestage. */
const RETRY_MS = 10_000

/** Compatibility refusals (node/install/compat.ts): the device declines the release, nothing failed. */
const DECLINED = new Set([
  'ERR_INCOMPATIBLE_ARCH',
  'ERR_INSUFFICIENT_RAM',
  'ERR_RUNTIME_RANGE',
  'ERR_INSUFFICIENT_DISK',
])

/** Fetches releases through the installer. */
export class Prestager {
  private readonly installer: Installer | undefined
  private readonly logger: Logger
  private readonly inFlight = new Set<string>()
  private readonly faults: Faults | undefined
  /** `release\ncode` of the refusals already logged. */
  private readonly declined = new Set<string>()

  constructor(installer: Installer | undefined, logger: Logger, faults?: Faults) {
    this.installer = installer
    this.logger = logger
    this.faults = faults
  }

  /** Fetches, per model, the newest release that is not bad (unless its policy says not to). */
  prestageNewest(manifests: Iterable<ReleaseManifest>, bad: (model: string) => Set<string>): void {
    if (this.installer === undefined) return
    const newest = new Map<string, ReleaseManifest>()
    for (const m of manifests) {
      if (bad(m.model).has(m.version)) continue
      const cur = newest.get(m.model)
      if (cur === undefined || m.seq > cur.seq) newest.set(m.model, m)
    }
    for (const m of newest.values()) {
      try {
        if (m.policy.prestage !== false) this.fetch(m)
      } catch (err) {
        this.failed(releaseKey(m), err)
      }
    }
  }

  /** Fetches one release (no-op while it is being fetched). */
  fetch(m: ReleaseManifest): void {
    const key = releaseKey(m)
    if (this.inFlight.has(key) || this.installer === undefined) return
    this.inFlight.add(key)
    this.installer.prestage(m).then(
      () => this.faults?.ok(key),
      (err: unknown) => {
        this.failed(key, err)
        setTimeout(() => this.inFlight.delete(key), RETRY_MS).unref()
      },
    )
  }

  private failed(key: string, err: unknown): void {
    const code = (err as { code?: unknown } | null)?.code
    if (code === 'ERR_STOPPED') return // the daemon is shutting down: nothing failed
    if (typeof code === 'string' && DECLINED.has(code)) {
      this.faults?.ok(key)
      if (!this.declined.has(`${key}\n${code}`) && this.declined.size < 1000) {
        this.declined.add(`${key}\n${code}`)
        this.logger.warn({ release: key, code }, `release declined: ${(err as Error).message}`)
      }
      return
    }
    if (this.faults !== undefined) this.faults.fail(key, err)
    else this.logger.warn({ release: key, err }, 'prestage failed')
  }
}
