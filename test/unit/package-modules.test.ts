/**
 * What a package's node_modules holds (packaging/modules.ts) and how its native binaries are told
 * apart (packaging/elf.ts), on a small lock and tree made here.
 */
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { elfFiles, elfMachine } from '../../packaging/elf.ts'
import { copyModules, selectPackages } from '../../packaging/modules.ts'
import { tmpDir } from '../helpers/index.ts'

const LOCK = {
  '': { dependencies: { a: '1', 'node-llama-cpp': '3' }, devDependencies: { typescript: '5' } },
  'node_modules/a': { version: '1.0.0', dependencies: { b: '1' } },
  'node_modules/b': { version: '1.0.0' },
  'node_modules/a/node_modules/b': { version: '2.0.0' },
  'node_modules/biome': { version: '1.0.0', dev: true },
  'node_modules/typescript': { version: '5.0.0', devOptional: true },
  'node_modules/node-llama-cpp': {
    version: '3.0.0',
    optionalDependencies: { '@node-llama-cpp/linux-x64': '3', '@node-llama-cpp/linux-arm64': '3' },
  },
  'node_modules/@node-llama-cpp/linux-x64': { version: '3.0.0', optional: true, os: ['linux'], cpu: ['x64'] },
  'node_modules/@node-llama-cpp/linux-x64-cuda': { version: '3.0.0', optional: true, os: ['linux'], cpu: ['x64'] },
  'node_modules/@node-llama-cpp/linux-arm64': {
    version: '3.0.0',
    optional: true,
    os: ['linux'],
    cpu: ['arm64', 'x64'],
  },
  'node_modules/@node-llama-cpp/mac-arm64-metal': { version: '3.0.0', optional: true, os: ['darwin'], cpu: ['arm64'] },
  'node_modules/r-musl': { version: '1.0.0', optional: true, os: ['linux'], cpu: ['arm64'], libc: ['musl'] },
  'node_modules/r-gnu': { version: '1.0.0', optional: true, os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
}

test('production entries of the target only: no dev, no other os/cpu/libc, one llama.cpp build', () => {
  const x64 = selectPackages(LOCK, 'x64')
  assert.deepEqual(x64.ship, [
    'node_modules/@node-llama-cpp/linux-x64',
    'node_modules/a',
    'node_modules/a/node_modules/b',
    'node_modules/b',
    'node_modules/node-llama-cpp',
  ])
  assert.deepEqual(x64.leftOut.map((l) => l.path).sort(), [
    'node_modules/@node-llama-cpp/linux-arm64',
    'node_modules/@node-llama-cpp/linux-x64-cuda',
    'node_modules/typescript',
  ])
  const arm = selectPackages(LOCK, 'arm64')
  assert.ok(arm.ship.includes('node_modules/@node-llama-cpp/linux-arm64'))
  assert.ok(arm.ship.includes('node_modules/r-gnu'))
  assert.ok(!arm.ship.includes('node_modules/r-musl'))
  assert.ok(!arm.ship.some((p) => p.includes('x64')))
})

function elfHeader(machine: number): Buffer {
  const b = Buffer.alloc(64)
  b.writeUInt32BE(0x7f454c46, 0)
  b[4] = 2 // 64-bit
  b[5] = 1 // little endian
  b.writeUInt16LE(machine, 18)
  return b
}

test('copies the selected packages without other platforms prebuilds; refuses a version the lock does not name', async (t) => {
  const src = await tmpDir(t, 'llmesh-pkg-src-')
  const put = (rel: string, data: string | Buffer): void => {
    mkdirSync(join(src, rel, '..'), { recursive: true })
    writeFileSync(join(src, rel), data)
  }
  writeFileSync(join(src, 'package-lock.json'), JSON.stringify({ packages: LOCK }))
  for (const [path, e] of Object.entries(LOCK)) {
    if (path !== '' && !/musl|r-gnu/.test(path))
      put(`${path}/package.json`, JSON.stringify({ version: (e as { version?: string }).version }))
  }
  put('node_modules/a/prebuilds/linux-x64/a.node', elfHeader(62))
  put('node_modules/a/prebuilds/linux-arm64/a.node', elfHeader(183))
  put('node_modules/a/prebuilds/darwin-x64/a.node', elfHeader(62))
  put('node_modules/a/index.d.ts', 'export {}')
  put('node_modules/a/index.js', '')
  const dest = await tmpDir(t, 'llmesh-pkg-dest-')
  const leftOut = copyModules(src, dest, 'arm64')
  assert.deepEqual(readdirSync(join(dest, 'node_modules/a/prebuilds')), ['linux-arm64'])
  assert.deepEqual(
    readdirSync(join(dest, 'node_modules/a')).sort(),
    ['node_modules', 'package.json', 'prebuilds', 'index.js'].sort(),
  )
  assert.deepEqual(
    elfFiles(dest).map((e) => [e.path, e.machine]),
    [['node_modules/a/prebuilds/linux-arm64/a.node', 183]],
  )
  assert.ok(!readdirSync(join(dest, 'node_modules')).includes('biome'))
  // an optional entry missing on the build machine (r-gnu) is listed, not fatal
  assert.match(leftOut.find((l) => l.path === 'node_modules/r-gnu')?.reason ?? '', /optional and not installed/)
  put('node_modules/b/package.json', JSON.stringify({ version: '9.9.9' }))
  const dest2 = await tmpDir(t, 'llmesh-pkg-dest-')
  assert.throws(() => copyModules(src, dest2, 'x64'), /9\.9\.9/)
})

test('elfMachine reads the machine of both byte orders and ignores non-ELF files', async (t) => {
  const dir = await tmpDir(t, 'llmesh-elf-')
  writeFileSync(join(dir, 'le'), elfHeader(183))
  const be = elfHeader(0)
  be[5] = 2
  be.writeUInt16BE(62, 18)
  writeFileSync(join(dir, 'be'), be)
  writeFileSync(join(dir, 'text'), '#!/bin/sh\necho hello world, this is long enough\n')
  writeFileSync(join(dir, 'short'), '\x7fELF')
  assert.equal(elfMachine(join(dir, 'le')), 183)
  assert.equal(elfMachine(join(dir, 'be')), 62)
  assert.equal(elfMachine(join(dir, 'text')), undefined)
  assert.equal(elfMachine(join(dir, 'short')), undefined)
})
