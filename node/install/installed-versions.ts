/**
 * What is installed on disk, read without locks (installer.ts holds them): the verified versions
 * of a model, the manifest of one, and the cleanup of what a crash left (partials, tmp links).
 */
import { access, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { compareVersionsTotal, parseVersion } from '../../protocols/version.ts'
import { MANIFEST_FILE } from './constants.ts'
import { type InstallLayout, listDir, MODEL_FILE, PARTIAL_FILE, TMP_LINK_PREFIX } from './layout.ts'

/** Newest version first (semver on core + prerelease; build metadata, which may hold `_`, breaks ties). */
export const newestFirst = (a: string, b: string): number => compareVersionsTotal(b, a)

/** The manifest of a verified installed version, or null. */
export async function installedManifest(
  layout: InstallLayout,
  model: string,
  version: string,
): Promise<ReleaseManifest | null> {
  try {
    const text = await readFile(join(layout.versionDir(model, version), MANIFEST_FILE), 'utf8')
    await access(layout.file(model, version))
    return JSON.parse(text) as ReleaseManifest
  } catch {
    return null
  }
}

/** The versions of `model` with a model file (in directory order). */
export async function installedVersions(layout: InstallLayout, model: string): Promise<string[]> {
  const out: string[] = []
  for (const v of await listDir(layout.modelDir(model))) {
    if (parseVersion(v) === undefined) continue // links, tmp files, foreign entries
    if ((await listDir(layout.versionDir(model, v))).includes(MODEL_FILE)) out.push(v)
  }
  return out
}

/** Removes what a crash left in a model's directory: tmp links, partial files, tmp manifests. */
export async function cleanLeftovers(layout: InstallLayout, model: string): Promise<void> {
  const mdir = layout.modelDir(model)
  for (const entry of await listDir(mdir)) {
    if (entry.startsWith(TMP_LINK_PREFIX)) await rm(join(mdir, entry), { force: true })
    else if (entry !== 'active' && entry !== 'previous') {
      await rm(join(mdir, entry, PARTIAL_FILE), { force: true })
      await rm(join(mdir, entry, `${MANIFEST_FILE}.tmp`), { force: true })
    }
  }
}
