/**
 * `history.json` under the data dir: FleetHistory's series, saved atomically (temp file, fsync,
 * rename, fsync of the directory) so a crash leaves the old save or the new one, never a torn
 * file. Loading is bounded (HISTORY_MAX_FILE_BYTES) and never fatal: an unreadable or oversized
 * file is set aside as `history.json.bad` and the node starts with what the store still holds.
 */
import { open, readFile, rename, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fsyncDir } from '../install/layout.ts'
import type { Logger } from '../logger.ts'
import { HISTORY_FILE, HISTORY_MAX_FILE_BYTES } from './constants.ts'
import type { SeriesJson } from './history-series.ts'

/** What is saved. */
export interface SavedHistory {
  /** receivedAt of the newest report folded in. */
  through: number
  releases: Record<string, SeriesJson>
  devices: Record<string, SeriesJson>
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

/** Reads the saved history; undefined when there is none or it cannot be used. */
export async function loadHistory(dataDir: string, logger: Logger): Promise<SavedHistory | undefined> {
  const path = join(dataDir, HISTORY_FILE)
  const size = await stat(path).then(
    (s) => s.size,
    () => undefined,
  )
  if (size === undefined) return undefined
  try {
    if (size > HISTORY_MAX_FILE_BYTES) throw new Error(`${size} bytes, more than ${HISTORY_MAX_FILE_BYTES}`)
    const json: unknown = JSON.parse(await readFile(path, 'utf8'))
    if (!isRecord(json) || typeof json.through !== 'number' || !isRecord(json.releases) || !isRecord(json.devices)) {
      throw new Error('not a saved history')
    }
    return json as unknown as SavedHistory
  } catch (err) {
    logger.warn({ err: (err as Error).message, path }, 'history: saved file unusable, set aside')
    await rename(path, `${path}.bad`).catch(() => {})
    return undefined
  }
}

/** Saves atomically. */
export async function saveHistory(dataDir: string, h: SavedHistory): Promise<void> {
  const path = join(dataDir, HISTORY_FILE)
  const tmp = `${path}.tmp`
  const f = await open(tmp, 'w')
  try {
    await f.writeFile(JSON.stringify(h))
    await f.datasync()
  } finally {
    await f.close()
  }
  await rename(tmp, path)
  await fsyncDir(dataDir)
}
