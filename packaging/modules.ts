/**
 * The production node_modules of one target architecture, taken from the build machine's own
 * `npm ci` install (so nothing is downloaded) and checked against package-lock.json.
 *
 * How it works: every lock entry is a directory under node_modules. An entry is shipped when it is
 * not dev-only (what `npm ci --omit=dev` keeps) and its `os`/`cpu`/`libc` fields admit
 * linux/<arch>/glibc (what `npm ci --os=linux --cpu=<arch> --libc=glibc` selects). node-llama-cpp's
 * backends are narrowed to the target's own CPU build (see constants.ts). Each entry's directory is
 * copied without its nested node_modules (nested entries are lock entries of their own), without
 * other platforms' `prebuilds/<platform>-<arch>` and without PRUNED_PATHS. An optional entry the
 * build machine never installed (another platform's optional binary) is left out and listed; a
 * missing required entry or a version that differs from the lock fails the build.
 */
import { cpSync, existsSync, readFileSync, realpathSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { type Arch, LLAMA_GPU_REASON, LLAMA_SCOPE, PRUNED_PATHS } from './constants.ts'

/** One entry of package-lock.json's `packages`. */
interface LockEntry {
  version?: string
  dev?: boolean
  optional?: boolean
  devOptional?: boolean
  os?: string[]
  cpu?: string[]
  libc?: string[]
  link?: boolean
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
}

/** A package left out of the target's node_modules, and why. */
export interface LeftOut {
  path: string
  reason: string
}

/** The decision for each lock entry: ship it, or leave it out with a reason. */
export interface Selection {
  ship: string[]
  leftOut: LeftOut[]
}

function admits(list: string[] | undefined, value: string): boolean {
  if (list === undefined) return true
  if (list.includes(`!${value}`)) return false
  const positive = list.filter((v) => !v.startsWith('!'))
  return positive.length === 0 || positive.includes(value)
}

/** Name of the package at a lock path (`node_modules/a/node_modules/@s/b` → `@s/b`). */
export function packageName(lockPath: string): string {
  const i = lockPath.lastIndexOf('node_modules/')
  return lockPath.slice(i + 'node_modules/'.length)
}

/** Chooses the lock entries of a target (pure: the lock's `packages` in, a selection out). */
export function selectPackages(packages: Record<string, LockEntry>, arch: Arch): Selection {
  const ship: string[] = []
  const leftOut: LeftOut[] = []
  // names that production code depends on (not as an optional peer): a devOptional entry that is
  // not among them is our devDependency that some package merely accepts as an optional peer
  const needed = new Set<string>()
  for (const [path, e] of Object.entries(packages)) {
    if (e.dev === true || (path !== '' && e.devOptional === true)) continue
    for (const n of Object.keys({ ...e.dependencies, ...e.optionalDependencies })) needed.add(n)
  }
  for (const [path, e] of Object.entries(packages)) {
    if (path === '' || !path.startsWith('node_modules/')) continue
    if (e.dev === true) continue // development only: never part of a package, not worth listing
    if (!admits(e.os, 'linux') || !admits(e.cpu, arch) || !admits(e.libc, 'glibc')) continue
    const name = packageName(path)
    if (e.devOptional === true && !needed.has(name)) {
      leftOut.push({
        path,
        reason: 'a development dependency that production packages only accept as an optional peer',
      })
      continue
    }
    if (name.startsWith(LLAMA_SCOPE) && name !== `${LLAMA_SCOPE}linux-${arch}`) {
      const gpu = name.startsWith(`${LLAMA_SCOPE}linux-${arch}-`)
      leftOut.push({
        path,
        reason: gpu ? LLAMA_GPU_REASON : `another architecture's llama.cpp build (its cpu field also lists ${arch})`,
      })
      continue
    }
    ship.push(path)
  }
  return { ship: ship.sort(), leftOut }
}

function isForeignPrebuild(rel: string, arch: Arch): boolean {
  const parts = rel.split(sep)
  const i = parts.indexOf('prebuilds')
  return i >= 0 && parts.length > i + 1 && parts[i + 1] !== `linux-${arch}`
}

/**
 * Copies the selected packages from `sourceRoot/node_modules` to `destRoot/node_modules`.
 * Returns what was left out (selection's and optional packages missing on the build machine).
 */
export function copyModules(sourceRoot: string, destRoot: string, arch: Arch): LeftOut[] {
  const lock = JSON.parse(readFileSync(join(sourceRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>
  }
  const { ship, leftOut } = selectPackages(lock.packages, arch)
  const modules = realpathSync(join(sourceRoot, 'node_modules'))
  for (const path of ship) {
    const entry = lock.packages[path] as LockEntry
    const src = join(modules, relative('node_modules', path))
    if (!existsSync(join(src, 'package.json'))) {
      if (entry.optional === true || entry.devOptional === true) {
        leftOut.push({
          path,
          reason: 'optional and not installed on the build machine (its binary needs the registry)',
        })
        continue
      }
      throw new Error(`${path} is required but not installed: run npm ci first`)
    }
    const version = (JSON.parse(readFileSync(join(src, 'package.json'), 'utf8')) as { version?: string }).version
    if (entry.version !== undefined && version !== entry.version) {
      throw new Error(`${path} is ${version} but package-lock.json says ${entry.version}: run npm ci first`)
    }
    cpSync(src, join(destRoot, path), {
      recursive: true,
      verbatimSymlinks: true,
      filter: (from) => {
        const rel = relative(src, from)
        if (rel === '') return true
        if (rel === 'node_modules' || rel.startsWith(`node_modules${sep}`)) return false
        if (isForeignPrebuild(rel, arch)) return false
        return !PRUNED_PATHS.some(([re]) => re.test(rel))
      },
    })
  }
  return leftOut
}
