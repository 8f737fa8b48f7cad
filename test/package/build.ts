/**
 * The packages the package tests use: built once per source state and shared by every test file
 * (and run): `dist/llmesh-<v>-linux-<arch>.tar.gz` is reused when its manifest's source digest
 * equals the tree's (packaging/build.ts sourceDigest), else rebuilt. A lock directory in dist/
 * keeps two test files from building at once (the lock of a dead process is taken over).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import {
  type BuiltPackage,
  buildPackage,
  type PackageManifest,
  packageStem,
  projectVersions,
  sourceDigest,
} from '../../packaging/build.ts'
import type { Arch } from '../../packaging/constants.ts'
import { waitFor } from '../helpers/index.ts'

/** Repository root. */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..')
/** Where the tests' packages live (the same place `npm run package` writes). */
export const DIST = join(REPO_ROOT, 'dist')
/** A build under a CPU hog takes minutes: the package tests' own timeout. */
export const BUILD_TEST_TIMEOUT_MS = 25 * 60_000

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function withLock<T>(fn: () => T): Promise<T> {
  const lock = join(DIST, '.build-lock')
  mkdirSync(DIST, { recursive: true })
  await waitFor(
    () => {
      try {
        mkdirSync(lock)
        writeFileSync(join(lock, 'pid'), String(process.pid))
        return true
      } catch {
        const owner = Number(existsSync(join(lock, 'pid')) ? readFileSync(join(lock, 'pid'), 'utf8') : 0)
        if (owner > 0 && !pidAlive(owner)) rmSync(lock, { recursive: true, force: true })
        return false
      }
    },
    { timeoutMs: BUILD_TEST_TIMEOUT_MS, what: 'the package build lock', intervalMs: 500 },
  )
  try {
    return fn()
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

/** The package of `arch` for the current tree, and whether this call built it. */
export async function ensurePackage(
  arch: Arch,
): Promise<{ tarball: string; manifest: PackageManifest; built?: BuiltPackage }> {
  return withLock(() => {
    const stem = packageStem(projectVersions(REPO_ROOT).version, arch)
    const tarball = join(DIST, `${stem}.tar.gz`)
    const sidecar = join(DIST, `${stem}.json`)
    const digest = sourceDigest(REPO_ROOT)
    if (existsSync(tarball) && existsSync(sidecar)) {
      const manifest = JSON.parse(readFileSync(sidecar, 'utf8')) as PackageManifest
      if (manifest.source_sha256 === digest) return { tarball, manifest }
    }
    const built = buildPackage({ arch, root: REPO_ROOT, out: DIST })
    return { tarball: built.tarball, manifest: built.manifest, built }
  })
}
