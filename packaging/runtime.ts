/**
 * The Node runtime of a target: the `node-linux-<arch>` npm package of the version the project's
 * `node` devDependency pins, fetched once with `npm pack` (the only download of a package build)
 * into a cache directory, and its `bin/node` and LICENSE extracted into the package.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { type Arch, TARGETS } from './constants.ts'
import { elfMachine } from './elf.ts'

/** The runtime tarball of `arch` in `cacheDir`, fetched with `npm pack` when absent. */
export function runtimeTarball(arch: Arch, version: string, cacheDir: string): string {
  const name = TARGETS[arch].runtimePackage
  const file = join(cacheDir, `${name}-${version}.tgz`)
  if (existsSync(file)) return file
  mkdirSync(cacheDir, { recursive: true })
  const tmp = join(cacheDir, `.pack-${process.pid}`)
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp)
  // npm checks the tarball against the registry's integrity; --prefer-offline reuses npm's cache
  execFileSync('npm', ['pack', `${name}@${version}`, '--prefer-offline', '--silent', '--pack-destination', tmp], {
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 600_000,
  })
  renameSync(join(tmp, `${name}-${version}.tgz`), file)
  rmSync(tmp, { recursive: true, force: true })
  return file
}

/** Extracts `bin/node` and LICENSE into `<dest>/runtime/` and checks the binary's architecture. */
export function installRuntime(arch: Arch, version: string, cacheDir: string, dest: string): void {
  const tarball = runtimeTarball(arch, version, cacheDir)
  const runtime = join(dest, 'runtime')
  mkdirSync(runtime, { recursive: true })
  execFileSync('tar', ['-xzf', tarball, '-C', runtime, '--strip-components=1', 'package/bin/node', 'package/LICENSE'])
  const machine = elfMachine(join(runtime, 'bin', 'node'))
  if (machine !== TARGETS[arch].elfMachine) {
    throw new Error(`${tarball}: bin/node is ELF machine ${machine}, not ${TARGETS[arch].elfName}`)
  }
}
