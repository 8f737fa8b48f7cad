/**
 * On-disk layout of installed models and the crash-safe file operations on it.
 *
 *   models/<model>/<version>/model.gguf(.partial)  manifest.json
 *   models/<model>/<version>/model.gguf.download  download.json   (a download built in place)
 *   models/<model>/active   -> <version>           (relative symlink)
 *   models/<model>/previous -> <version>
 *
 * A symlink is switched by creating `.tmp-<rand>` beside it and rename(2)-ing it over the
 * link: the link always names either the old or the new target, never nothing. Directories are
 * fsynced after renames so the switch survives power loss.
 */
import { randomBytes } from 'node:crypto'
import { open, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import {
  ACTIVE_LINK,
  MODEL_FILE,
  MODELS_DIR,
  PARTIAL_FILE,
  PREVIOUS_LINK,
  STAGING_FILE,
  STAGING_MANIFEST,
  TMP_LINK_PREFIX,
} from './constants.ts'

/** Paths of one node's install tree. */
export class InstallLayout {
  readonly root: string
  constructor(dataDir: string) {
    this.root = join(dataDir, MODELS_DIR)
  }
  modelDir(model: string): string {
    return join(this.root, model)
  }
  versionDir(model: string, version: string): string {
    return join(this.root, model, version)
  }
  file(model: string, version: string): string {
    return join(this.versionDir(model, version), MODEL_FILE)
  }
  partial(model: string, version: string): string {
    return join(this.versionDir(model, version), PARTIAL_FILE)
  }
  /** The file a download is built in (see STAGING_FILE). */
  staging(model: string, version: string): string {
    return join(this.versionDir(model, version), STAGING_FILE)
  }
  /** The manifest of the download in the version's directory. */
  stagingManifest(model: string, version: string): string {
    return join(this.versionDir(model, version), STAGING_MANIFEST)
  }
  link(model: string, which: 'active' | 'previous'): string {
    return join(this.modelDir(model), which === 'active' ? ACTIVE_LINK : PREVIOUS_LINK)
  }
}

/** Bytes of disk `path` occupies (its allocated blocks: a sparse file counts what was written), 0 when absent. */
export async function allocatedBytes(path: string): Promise<number> {
  try {
    return (await stat(path)).blocks * 512
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw err
  }
}

/** fsyncs a directory so renames inside it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Points `linkPath` at `target` atomically (new symlink, then rename over the old one). */
export async function atomicSymlink(target: string, linkPath: string): Promise<void> {
  const dir = join(linkPath, '..')
  const tmp = join(dir, `${TMP_LINK_PREFIX}${randomBytes(6).toString('hex')}`)
  await symlink(target, tmp)
  try {
    await rename(tmp, linkPath)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncDir(dir)
}

/** The version a link names, or null when the link does not exist. */
export async function readVersionLink(linkPath: string): Promise<string | null> {
  try {
    return await readlink(linkPath)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}

/** Removes a link durably (no error when absent). */
export async function removeLink(linkPath: string): Promise<void> {
  await rm(linkPath, { force: true })
  await fsyncDir(join(linkPath, '..'))
}

/** Names of entries in a directory ([] when it does not exist). */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

export { MODEL_FILE, PARTIAL_FILE, TMP_LINK_PREFIX }
