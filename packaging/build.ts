/**
 * Builds one package: `<out>/llmesh-<version>-linux-<arch>.tar.gz`, its manifest beside it
 * (`….json`, also inside as MANIFEST.json) and the SHA256SUMS of every package of that version.
 *
 * Layout of a package (one top directory, extracted anywhere, installed by its install.sh):
 *   llmesh-<v>-linux-<arch>/
 *     install.sh            offline installer (docs: README "Install on a device")
 *     bin/llmesh            launcher: runtime/bin/node on app/cli/bin.js
 *     runtime/bin/node      Node 22 for <arch> (npm package node-linux-<arch>), runtime/LICENSE
 *     app/                  cli/ node/ seed/ protocols/ (compiled to .js: compile.ts) package.json
 *                           README.md node_modules/; cli/bin.js and its chunks cli/*-<hash>.js:
 *                           the CLI bundled and minified (bundle.ts)
 *     libexec/wait-ready.js readiness check of the systemd units (ExecStartPost)
 *     systemd/              llmesh-node.service, llmesh-seed.service, node.env, seed.env
 *     MANIFEST.json         version, arch, runtime, commit, source digest, left-out packages, ELF files
 *
 * The build fails when any ELF file of the tree is not of the target's machine.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join, relative } from 'node:path'
import { PACKAGE_SIGNATURE_FILE } from '../protocols/constants.ts'
import { bundleCli } from './bundle.ts'
import { emitFile, shippedPath } from './compile.ts'
import {
  APP_DIRS,
  APP_FILES,
  type Arch,
  CONTAINER_DIR,
  GZIP_LEVEL,
  MANIFEST_FORMAT,
  PACKAGE_FILES,
  SHM_DIR,
  STAGE_MIN_FREE_BYTES,
  TARGETS,
} from './constants.ts'
import { elfFiles } from './elf.ts'
import { copyModules, type LeftOut } from './modules.ts'
import { installRuntime } from './runtime.ts'

/** MANIFEST.json of a package. */
export interface PackageManifest {
  format: number
  name: string
  version: string
  arch: Arch
  /** Version of the bundled Node runtime. */
  node: string
  /** git commit of the source (`-dirty` when packaged files differ from it), or `unknown`. */
  commit: string
  /** sha256 over the packaged source files, packaging/ and package-lock.json (sourceDigest). */
  source_sha256: string
  left_out: LeftOut[]
  /** Every native binary, relative to the package's top directory. */
  elf: string[]
}

/** What buildPackage made. */
export interface BuiltPackage {
  tarball: string
  manifest: PackageManifest
  bytes: number
  seconds: number
}

/** Options of a build. */
export interface BuildInit {
  arch: Arch
  /** Repository root (holds package.json, package-lock.json, node_modules). */
  root: string
  /** Output directory. */
  out: string
  /** Where runtime tarballs are cached (default `<out>/.cache`). */
  cacheDir?: string
}

function filesUnder(root: string, dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
}

/** The source files a package holds, relative to the repository root, sorted. */
export function sourceFiles(root: string): string[] {
  return [...APP_DIRS.flatMap((d) => filesUnder(root, d)), ...APP_FILES].sort()
}

/**
 * sha256 over the packaged sources, packaging/ (less packaging/container/, which builds images
 * from packages and is not in them) and the lock: equal digests make equal packages.
 */
export function sourceDigest(root: string): string {
  const h = createHash('sha256')
  const packaging = filesUnder(root, 'packaging').filter((f) => !f.startsWith(CONTAINER_DIR))
  for (const f of [...sourceFiles(root), ...packaging, 'package-lock.json'].sort()) {
    h.update(`${f}\0`)
    h.update(
      createHash('sha256')
        .update(readFileSync(join(root, f)))
        .digest(),
    )
  }
  return h.digest('hex')
}

function git(root: string, args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

/** The package's file name stem, e.g. `llmesh-0.1.0-linux-arm64`. */
export function packageStem(version: string, arch: Arch): string {
  return `llmesh-${version}-linux-${arch}`
}

/** The project's version and the Node runtime version it pins (the `node` devDependency). */
export function projectVersions(root: string): { version: string; node: string } {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    version: string
    devDependencies: Record<string, string>
  }
  const node = pkg.devDependencies.node
  if (node === undefined || !/^\d+\.\d+\.\d+$/.test(node)) throw new Error('package.json pins no exact node version')
  return { version: pkg.version, node }
}

/**
 * Where the package tree is assembled: a RAM-backed /dev/shm when it has room (copying and removing
 * ~10k small files is most of a build's time on a busy disk), else the output directory.
 */
function stageParent(out: string): string {
  try {
    const fs = statfsSync(SHM_DIR)
    if (fs.bavail * fs.bsize >= STAGE_MIN_FREE_BYTES) return SHM_DIR
  } catch {
    // no /dev/shm
  }
  mkdirSync(out, { recursive: true })
  return out
}

/** Builds the package of one architecture. */
export function buildPackage(init: BuildInit): BuiltPackage {
  const started = performance.now()
  const { root, arch, out } = init
  const { version, node } = projectVersions(root)
  const stem = packageStem(version, arch)
  mkdirSync(out, { recursive: true })
  const stage = join(stageParent(out), `.llmesh-stage-${arch}-${process.pid}`)
  const top = join(stage, stem)
  rmSync(stage, { recursive: true, force: true })
  mkdirSync(top, { recursive: true })
  try {
    for (const f of sourceFiles(root)) {
      const dest = shippedPath(f)
      if (dest !== undefined) emitFile(join(root, f), join(top, 'app', dest))
    }
    const leftOut = copyModules(root, join(top, 'app'), arch)
    bundleCli(join(top, 'app'), APP_DIRS)
    installRuntime(arch, node, init.cacheDir ?? join(out, '.cache'), top)
    for (const [src, dest, mode] of PACKAGE_FILES) {
      emitFile(join(root, 'packaging', src), join(top, dest))
      chmodSync(join(top, dest), mode)
    }
    const elves = elfFiles(top)
    const foreign = elves.filter((e) => e.machine !== TARGETS[arch].elfMachine)
    if (foreign.length > 0) {
      throw new Error(
        `not ${TARGETS[arch].elfName}: ${foreign.map((e) => `${e.path} (machine ${e.machine})`).join(', ')}`,
      )
    }
    const head = git(root, ['rev-parse', 'HEAD'])
    const dirty = git(root, [
      'status',
      '--porcelain',
      '--',
      ...APP_DIRS,
      ...APP_FILES,
      'packaging',
      'package-lock.json',
    ])
    const manifest: PackageManifest = {
      format: MANIFEST_FORMAT,
      name: 'llmesh',
      version,
      arch,
      node,
      commit: head === undefined ? 'unknown' : `${head}${dirty === '' ? '' : '-dirty'}`,
      source_sha256: sourceDigest(root),
      left_out: leftOut,
      elf: elves.map((e) => e.path),
    }
    const manifestText = `${JSON.stringify(manifest, null, 2)}\n`
    writeFileSync(join(top, 'MANIFEST.json'), manifestText)
    const tarball = join(out, `${stem}.tar.gz`)
    const epoch = process.env.SOURCE_DATE_EPOCH ?? git(root, ['log', '-1', '--format=%ct']) ?? '0'
    execFileSync('tar', [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      `--mtime=@${epoch}`,
      '-I',
      `gzip -${GZIP_LEVEL} -n`,
      '-C',
      stage,
      '-cf',
      `${tarball}.tmp`,
      stem,
    ])
    renameSync(`${tarball}.tmp`, tarball)
    writeFileSync(join(out, `${stem}.json`), manifestText)
    writeSums(out, version)
    const bytes = statSync(tarball).size
    return { tarball, manifest, bytes, seconds: (performance.now() - started) / 1000 }
  } finally {
    rmSync(stage, { recursive: true, force: true })
  }
}

/**
 * Writes `<out>/SHA256SUMS` (sha256sum -c format) over every package of `version` in `out`, and
 * removes a signature of the previous SHA256SUMS (it no longer verifies: sign again).
 */
export function writeSums(out: string, version: string): void {
  const lines = readdirSync(out)
    .filter((f) => f.startsWith(`llmesh-${version}-linux-`) && f.endsWith('.tar.gz'))
    .sort()
    .map(
      (f) =>
        `${createHash('sha256')
          .update(readFileSync(join(out, f)))
          .digest('hex')}  ${f}\n`,
    )
  writeFileSync(join(out, 'SHA256SUMS.tmp'), lines.join(''))
  rmSync(join(out, PACKAGE_SIGNATURE_FILE), { force: true })
  renameSync(join(out, 'SHA256SUMS.tmp'), join(out, 'SHA256SUMS'))
}
