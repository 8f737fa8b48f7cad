/**
 * The arm64 package holds aarch64 binaries only (checked with `file`, independently of the build's
 * own ELF check), needs no shared library beyond those install.sh checks for, and really runs: its
 * Node runs `llmesh --version` and `llmesh model inspect` of a tiny GGUF under qemu-aarch64-static with Debian's arm64 libc
 * (`dpkg --add-architecture arm64; apt-get install qemu-user-static libc6:arm64 libstdc++6:arm64
 * libatomic1:arm64`, done by .ci/run), and, with qemu registered in binfmt_misc (binfmt-support;
 * node-llama-cpp and the inference supervisor start aarch64 child processes, which the kernel can
 * only run through it), loads the GGUF with the package's aarch64 node-llama-cpp build and answers
 * one completion (arm64-complete.ts; about 70 s emulated). Without `file`, qemu or binfmt the checks
 * that need them are skipped with a message, except under CI=true, where they fail.
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { writeTinyGguf } from '../../node/model/gguf-writer.ts'
import { tmpDir } from '../helpers/index.ts'
import { BUILD_TEST_TIMEOUT_MS, ensurePackage, REPO_ROOT } from './build.ts'

const run = promisify(execFile)
const QEMU = 'qemu-aarch64-static'
const ARM64_LOADER = '/lib/ld-linux-aarch64.so.1'
/** glibc's own libraries: every Linux has them. */
const GLIBC = /^(libc|libm|libdl|libpthread|librt)\.so\.\d+$|^ld-linux-aarch64\.so\.1$/

function has(cmd: string, args: string[], why: string): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' })
    return true
  } catch {
    if (process.env.CI === 'true') throw new Error(`CI=true but ${why}`)
    process.stderr.write(`# skipped: ${why}\n`)
    return false
  }
}

async function extracted(
  t: Parameters<typeof tmpDir>[0],
): Promise<{ dir: string; manifest: { version: string; elf: string[] } }> {
  const { tarball, manifest } = await ensurePackage('arm64')
  const dir = await tmpDir(t, 'llmesh-arm64-')
  await run('tar', ['-xzf', tarball, '-C', dir])
  return { dir: join(dir, `llmesh-${manifest.version}-linux-arm64`), manifest }
}

const noFile = !has('file', ['--version'], '`file` is missing (apt-get install file)')

test('every native binary of the arm64 package is aarch64, none x86-64', {
  skip: noFile,
  timeout: BUILD_TEST_TIMEOUT_MS,
}, async (t) => {
  const { dir, manifest } = await extracted(t)
  const elves = (
    await run('sh', ['-c', 'find . -type f -exec file -N {} + | grep ": *ELF"'], {
      cwd: dir,
      maxBuffer: 64 * 1024 * 1024,
    })
  ).stdout
    .trim()
    .split('\n')
  const byPath = new Map(elves.map((l) => [l.slice(2, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]))
  assert.ok(byPath.has('runtime/bin/node'), 'the Node runtime is there')
  assert.ok(byPath.size >= 10, `only ${byPath.size} ELF files`)
  const bad = [...byPath].filter(([, type]) => !/ARM aarch64/.test(type) || /x86-64/.test(type))
  assert.deepEqual(bad, [])
  // the build's own ELF check found the same files
  assert.deepEqual([...byPath.keys()].sort(), [...manifest.elf].sort())
  // and no binary needs a library that is neither in the package, glibc's, nor checked by install.sh
  const install = readFileSync(join(dir, 'install.sh'), 'utf8')
  const inPackage = new Set([...byPath.keys()].map((p) => p.split('/').pop()))
  const needed = new Set<string>()
  if (has('readelf', ['--version'], '`readelf` is missing (binutils)')) {
    for (const p of byPath.keys()) {
      const { stdout: dyn } = await run('readelf', ['-d', join(dir, p)])
      for (const m of dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) needed.add(m[1] as string)
    }
    const unchecked = [...needed].filter((l) => !GLIBC.test(l) && !inPackage.has(l) && !install.includes(l))
    assert.deepEqual(unchecked, [])
    assert.ok(needed.has('libatomic.so.1'), 'the list above is read (rocksdb-native needs libatomic)')
  }
})

test('the package ships JavaScript, no TypeScript: a daemon never loads the type stripper', {
  timeout: BUILD_TEST_TIMEOUT_MS,
}, async (t) => {
  const { dir } = await extracted(t)
  const app = ['cli', 'node', 'seed', 'protocols'].map((d) => join(dir, 'app', d))
  const files = (await run('find', [...app, '-type', 'f'])).stdout.trim().split('\n')
  assert.ok(files.filter((f) => f.endsWith('.js')).length > 100, `${files.length} files`)
  assert.deepEqual(
    files.filter((f) => /\.[cm]?ts$/.test(f)),
    [],
  )
  assert.match(readFileSync(join(dir, 'bin', 'llmesh'), 'utf8'), /"\$base\/app\/cli\/bin\.js"/)
  assert.ok(existsSync(join(dir, 'libexec', 'wait-ready.js')))
})

/** Where binfmt-support registers qemu for aarch64 ELF files. */
const BINFMT_AARCH64 = '/proc/sys/fs/binfmt_misc/qemu-aarch64'

const noQemu =
  !has(QEMU, ['--version'], `${QEMU} is missing (apt-get install qemu-user-static)`) ||
  !has(
    'test',
    ['-e', ARM64_LOADER],
    `${ARM64_LOADER} is missing (dpkg --add-architecture arm64; apt-get install libc6:arm64)`,
  )

test('the arm64 package runs llmesh --version and model inspect under qemu', {
  skip: noQemu,
  timeout: BUILD_TEST_TIMEOUT_MS,
}, async (t) => {
  const { dir, manifest } = await extracted(t)
  assert.ok(existsSync(join(dir, 'runtime/bin/node')))
  const { stdout } = await run(QEMU, [join(dir, 'runtime/bin/node'), join(dir, 'app/cli/bin.js'), '--version'], {
    timeout: 600_000,
    cwd: REPO_ROOT,
  })
  assert.equal(stdout.trim(), manifest.version)
  // and reads a model with the packaged aarch64 code
  const gguf = join(await tmpDir(t, 'llmesh-arm64-gguf-'), 'tiny.gguf')
  await writeTinyGguf(gguf)
  const inspect = await run(
    QEMU,
    [join(dir, 'runtime/bin/node'), join(dir, 'app/cli/bin.js'), 'model', 'inspect', gguf, '--json'],
    {
      timeout: 600_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  )
  const report = JSON.parse(inspect.stdout) as { ok: boolean; architecture: string; tensor_count: number }
  assert.equal(report.ok, true)
  assert.equal(report.architecture, 'llama')
  assert.ok(report.tensor_count > 0)
})

test('install.sh refuses the arm64 package on an x64 machine before changing anything', {
  skip: process.arch !== 'x64' || process.getuid?.() !== 0,
  timeout: BUILD_TEST_TIMEOUT_MS,
}, async (t) => {
  const { dir } = await extracted(t)
  // an empty --fleet: were the architecture check broken, the fleet check still stops it before any change
  const empty = await tmpDir(t, 'llmesh-empty-fleet-')
  const err = (await run(join(dir, 'install.sh'), ['--fleet', empty]).catch((e) => e)) as {
    code?: number
    stderr?: string
  }
  assert.equal(err.code, 1)
  assert.match(String(err.stderr), /this package is for arm64, this machine is x64/)
})

const noBinfmt =
  noQemu ||
  // .ci/run could not register qemu with the kernel (no right to mount binfmt_misc): said there
  (process.env.LLMESH_NO_BINFMT === '1' && 'binfmt_misc cannot be set up here (.ci/run warned)') ||
  !has(
    'grep',
    ['-qx', 'enabled', BINFMT_AARCH64],
    `${BINFMT_AARCH64} is not enabled (apt-get install binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64)`,
  )

test('the arm64 package loads a GGUF with its aarch64 llama.cpp and answers a completion under qemu', {
  skip: noBinfmt,
  timeout: BUILD_TEST_TIMEOUT_MS,
}, async (t) => {
  const { dir } = await extracted(t)
  const gguf = join(await tmpDir(t, 'llmesh-arm64-gguf-'), 'tiny.gguf')
  await writeTinyGguf(gguf)
  const t0 = performance.now()
  // the packaged node itself, started by the kernel through binfmt_misc as on a Pi
  const { stdout } = await run(
    join(dir, 'runtime/bin/node'),
    ['--disable-warning=ExperimentalWarning', join(REPO_ROOT, 'test/package/arm64-complete.ts'), dir, gguf],
    { timeout: 900_000, maxBuffer: 16 * 1024 * 1024 },
  )
  const r = JSON.parse(stdout) as { arch: string; tokensOut: number; finishReason: string; seconds: object }
  process.stderr.write(
    `arm64 completion under qemu: ${((performance.now() - t0) / 1000).toFixed(0)} s ${JSON.stringify(r.seconds)}\n`,
  )
  assert.equal(r.arch, 'arm64')
  assert.equal(r.tokensOut, 4)
  assert.equal(r.finishReason, 'length')
})
