/**
 * Which enrollments the seed made automatically, so the auto-enroller never undoes an operator's
 * choice. An enrollment whose digest is listed here follows the tags the device declares; any
 * other enrollment (signed by the operator through `llmesh device enroll|tag --tags`, through the
 * seed or locally with `--fleet`) pins the device's tags, and the auto-enroller leaves it alone.
 *
 * Kept in `<seed data>/auto-enrollments.json`. On the first start with this file missing, every
 * enrollment already held counts as automatic (before operator enrollments existed the
 * auto-enroller made them all).
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** The ledger's file under the seed's data dir. */
export const AUTO_ENROLLMENTS_FILE = 'auto-enrollments.json'

/** The set of auto-made enrollment digests, persisted. */
export class AutoEnrollmentLedger {
  private readonly digests = new Set<string>()
  private file: string | undefined
  private writes: Promise<void> = Promise.resolve()

  /** Loads the ledger (idempotent); `existing` are the enrollment digests held, used only when the file is missing. */
  async load(dataDir: string, existing: () => Iterable<string>): Promise<void> {
    if (this.file !== undefined) return
    this.file = join(dataDir, AUTO_ENROLLMENTS_FILE)
    try {
      const v = JSON.parse(await readFile(this.file, 'utf8')) as { digests?: unknown }
      if (Array.isArray(v.digests)) for (const d of v.digests) if (typeof d === 'string') this.digests.add(d)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      for (const d of existing()) this.digests.add(d)
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
    const text = `${JSON.stringify({ digests: [...this.digests] })}\n`
    this.writes = this.writes
      .then(async () => {
        await writeFile(`${file}.tmp`, text)
        await rename(`${file}.tmp`, file)
      })
      .catch(() => undefined)
  }
}
