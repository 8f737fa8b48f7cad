/**
 * Assembles a release's file from local feed blocks into `model.gguf.partial`, fsyncs it,
 * re-reads it to check the whole-file sha256 and size against the signed manifest, then
 * writes `manifest.json` and renames the partial to `model.gguf` (fsyncing the directory).
 * A `model.gguf` therefore always is a complete, verified file.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type Hypercore from 'hypercore'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { writeSynced } from '../durable-file.ts'
import { MANIFEST_FILE } from './constants.ts'
import { InstallError } from './errors.ts'
import { fsyncDir, type InstallLayout } from './layout.ts'

/** Hex sha256 and size of a file on disk. */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256')
  let size = 0
  for await (const buf of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    h.update(buf as Buffer)
    size += (buf as Buffer).byteLength
  }
  return { sha256: h.digest('hex'), size }
}

/** Assembles, verifies and publishes `models/<model>/<version>/model.gguf`. */
export async function assembleRelease(layout: InstallLayout, core: Hypercore, m: ReleaseManifest): Promise<string> {
  const dir = layout.versionDir(m.model, m.version)
  await mkdir(dir, { recursive: true })
  const partial = layout.partial(m.model, m.version)
  const fh = await open(partial, 'w')
  try {
    for (const c of m.chunks.chunks) {
      const data = await core.get(c.block, { wait: false })
      if (data === null) throw new Error(`block ${c.block} is not local`)
      await fh.write(data)
    }
    await fh.sync()
  } finally {
    await fh.close()
  }
  const got = await hashFile(partial)
  if (got.sha256 !== m.file.sha256 || got.size !== m.file.size) {
    await rm(partial, { force: true })
    throw new InstallError(
      'ERR_DIGEST_MISMATCH',
      `${m.model}@${m.version}: assembled file sha256 ${got.sha256} (${got.size} bytes) does not match the signed ${m.file.sha256} (${m.file.size} bytes)`,
    )
  }
  const manifestTmp = join(dir, `${MANIFEST_FILE}.tmp`)
  // fsynced before the rename: after a crash manifest.json is whole or absent, never empty
  await writeSynced(manifestTmp, JSON.stringify(m), 0o644)
  await rename(manifestTmp, join(dir, MANIFEST_FILE))
  const final = layout.file(m.model, m.version)
  await rename(partial, final)
  await fsyncDir(dir)
  return final
}
