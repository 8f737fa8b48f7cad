/**
 * Which enrollments the seed made automatically, so the auto-enroller never undoes an operator's
 * choice. An enrollment whose digest is listed here follows the tags the device declares; any
 * other enrollment (signed by the operator through `llmesh device enroll|tag --tags`, through the
 * seed or locally with `--fleet`) pins the device's tags, and the auto-enroller leaves it alone.
 *
 * Kept in `<seed data>/auto-enrollments.json` (`{ version: 2, digests }`, message ids). On the
 * first start with this file missing, every enrollment already held counts as automatic (before
 * operator enrollments existed the auto-enroller made them all). A version-1 file names
 * enrollments by the sha256 of their wire bytes (before messages had one id whatever their
 * encoding): it is migrated by hashing the held enrollments' bytes; one whose bytes were
 * re-encoded on load no longer matches and counts as pinned (the safe side: the operator re-tags it).
 */
import { createHash } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** The ledger's file under the seed's data dir. */
const LEDGER_VERSION = 2

/** An enrollment the store holds: its message id and wire bytes. */
export interface HeldEnrollment {
  digest: string
  bytes: Uint8Array
}

/** The ledger's file under the seed's data dir. */
export const AUTO_ENROLLMENTS_FILE = 'auto-enrollments.json'

/** The set of auto-made enrollment digests, persisted. */
export class AutoEnrollmentLedger {
  private readonly digests = new Set<string>()
  private file: string | undefined
  private writes: Promise<void> = Promise.resolve()

  /** Loads the ledger (idempotent); `existing` are the enrollments held (all automatic when the file is missing). */
  async load(dataDir: string, existing: () => Iterable<HeldEnrollment>): Promise<void> {
    if (this.file !== undefined) return
    this.file = join(dataDir, AUTO_ENROLLMENTS_FILE)
    try {
      const v = JSON.parse(await readFile(this.file, 'utf8')) as { version?: unknown; digests?: unknown }
      const listed = new Set(Array.isArray(v.digests) ? v.digests.filter((d) => typeof d === 'string') : [])
      if (v.version === LEDGER_VERSION) for (const d of listed) this.digests.add(d)
      else {
        // version 1: wire hashes
        for (const e of existing()) {
          if (listed.has(createHash('sha256').update(e.bytes).digest('hex'))) this.digests.add(e.digest)
        }
        this.save()
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      for (const e of existing()) this.digests.add(e.digest)
      this.save()
    }
  }

  /** Whether the auto-enroller (or `enroll` without tags) made this enrollment. */
  isAuto(digest: string): boolean {
    return this.digests.has(digest)
  }

  /** Records an automatic enrollment. */
  add(digest: string): void {
    if (this.digests.has(digest)) return
    this.digests.add(digest)
    this.save()
  }

  /** Waits for pending writes. */
  async flush(): Promise<void> {
    await this.writes
  }

  private save(): void {
    const file = this.file
    if (file === undefined) return
    const text = `${JSON.stringify({ version: LEDGER_VERSION, digests: [...this.digests] })}\n`
    this.writes = this.writes
      .then(async () => {
        await writeFile(`${file}.tmp`, text)
        await rename(`${file}.tmp`, file)
      })
      .catch(() => undefined)
  }
}
