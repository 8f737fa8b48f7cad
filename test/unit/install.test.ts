import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, test } from 'node:test'
import type { InstallError } from '../../node/install/errors.ts'
import { Installer } from '../../node/install/installer.ts'
import { silentLogger } from '../../node/logger.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { makeRelease } from './install-fixtures.ts'

let dir: string
let store: ModelStore
let installer: Installer

async function gguf(name: string, seed: number, perturbLayer?: number): Promise<string> {
  const p = join(dir, name)
  await writeTinyGguf(p, {
    layers: 2,
    embd: 64,
    seed: 5,
    ...(perturbLayer !== undefined ? { perturbLayer } : {}),
    ...(seed !== 5 ? { seed } : {}),
  })
  return p
}

async function newInstaller(extra: Partial<ConstructorParameters<typeof Installer>[1]> = {}): Promise<Installer> {
  const i = new Installer({ store, logger: silentLogger() }, { dataDir: dir, ...extra })
  await i.start()
  return i
}

describe('installer', () => {
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'install-'))
    store = new ModelStore({ dataDir: dir })
    await store.start()
    installer = await newInstaller()
  })
  afterEach(async () => {
    await installer.stop()
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  })

  test('prestage assembles a byte-identical verified file and shows it staged', async () => {
    const f = await gguf('v1.gguf', 5)
    const m = await makeRelease(store, 'tiny', '1.0.0', f)
    const path = await installer.prestage(m)
    assert.deepEqual(await readFile(path), await readFile(f))
    const st = (await installer.status()).tiny
    assert.deepEqual(st.staged, ['1.0.0'])
    assert.equal(st.active, null)
    assert.equal(st.downloading, null)
    assert.deepEqual(await readdir(join(dir, 'models', 'tiny', '1.0.0')), ['manifest.json', 'model.gguf'])
  })

  test('a version is never shown staged and downloading at once (its blocks still being adopted)', async () => {
    const m = await makeRelease(store, 'tiny', '1.0.0', await gguf('v1.gguf', 5))
    // hold the step after the file is in place: the blocks handed to the installed file
    let release!: () => void
    let reached!: () => void
    const atAdopt = new Promise<void>((r) => {
      reached = r
    })
    const adoptFile = store.adoptFile.bind(store)
    store.adoptFile = async (...args: Parameters<typeof store.adoptFile>) => {
      reached()
      await new Promise<void>((r) => {
        release = r
      })
      return adoptFile(...args)
    }
    const staging = installer.prestage(m)
    await atAdopt
    const st = (await installer.status()).tiny
    assert.deepEqual(st.staged, ['1.0.0'], 'in place, verified')
    assert.equal(st.downloading, null, 'so no longer downloading')
    release()
    await staging
    assert.equal((await installer.status()).tiny.downloading, null)
  })

  test('activation switches active atomically and keeps previous; rollback restores it', async () => {
    const m1 = await makeRelease(store, 'tiny', '1.0.0', await gguf('v1.gguf', 5))
    const m2 = await makeRelease(store, 'tiny', '1.1.0', await gguf('v2.gguf', 5, 1))
    await installer.prestage(m1)
    await installer.prestage(m2)
    await installer.activate('tiny', '1.0.0')
    assert.equal(await readlink(join(dir, 'models/tiny/active')), '1.0.0')
    await installer.activate('tiny', '1.1.0')
    let st = (await installer.status()).tiny
    assert.equal(st.active, '1.1.0')
    assert.equal(st.previous, '1.0.0')
    assert.equal(await installer.activeFile('tiny'), join(dir, 'models/tiny/1.1.0/model.gguf'))
    assert.equal(await installer.rollback('tiny'), '1.0.0')
    st = (await installer.status()).tiny
    assert.equal(st.active, '1.0.0')
    assert.equal(st.previous, null)
    const entries = await readdir(join(dir, 'models/tiny'))
    assert.ok(!entries.some((e) => e.startsWith('.tmp-')), `tmp leftovers: ${entries}`)
    await assert.rejects(installer.rollback('tiny'), (e: InstallError) => e.code === 'ERR_NO_PREVIOUS')
    await assert.rejects(installer.activate('tiny', '9.9.9'), (e: InstallError) => e.code === 'ERR_NOT_STAGED')
  })

  test('GC after each prestage keeps N versions and never active or previous; markHealthy drops previous', async () => {
    const stage = async (i: number, v: string) =>
      installer.prestage(await makeRelease(store, 'tiny', v, await gguf(`v${i}.gguf`, 5, i % 2)))
    await stage(0, '1.0.0')
    await stage(1, '1.1.0')
    await installer.activate('tiny', '1.0.0')
    await installer.activate('tiny', '1.1.0') // previous 1.0.0: the two oldest
    await stage(2, '1.2.0')
    await stage(3, '1.3.0')
    await stage(4, '1.4.0')
    let st = (await installer.status()).tiny
    assert.deepEqual(st.staged, ['1.4.0', '1.1.0', '1.0.0'])
    assert.deepEqual(await installer.gc('tiny'), [])
    await installer.markHealthy('tiny')
    st = (await installer.status()).tiny
    assert.equal(st.previous, null)
    assert.equal(st.active, '1.1.0')
    assert.deepEqual(st.staged, ['1.4.0', '1.1.0', '1.0.0'])
    const small = await newInstaller({ keepVersions: 1 })
    assert.deepEqual((await small.gc('tiny')).sort(), ['1.0.0', '1.4.0'])
    assert.deepEqual((await small.status()).tiny.staged, ['1.1.0'])
  })

  test('refuses a release for another architecture, with the reason in status', async () => {
    const m = await makeRelease(store, 'tiny', '2.0.0', await gguf('v.gguf', 5), { architectures: ['riscv64'] })
    const i = await newInstaller({ env: { arch: 'x64' } })
    await assert.rejects(
      i.prestage(m),
      (e: InstallError) => e.code === 'ERR_INCOMPATIBLE_ARCH' && /riscv64/.test(e.message),
    )
    const st = (await i.status()).tiny
    assert.equal(st.refused[0].code, 'ERR_INCOMPATIBLE_ARCH')
    assert.equal(st.refused[0].version, '2.0.0')
    assert.deepEqual(st.staged, [])
  })

  test('refuses too little disk (injected statfs), too little RAM and a foreign runtime', async () => {
    const m = await makeRelease(store, 'tiny', '2.0.0', await gguf('v.gguf', 5))
    const small = await newInstaller({ statfs: async () => ({ bavail: 10, bsize: 4096 }) })
    await assert.rejects(small.prestage(m), (e: InstallError) => e.code === 'ERR_INSUFFICIENT_DISK')
    assert.equal((await small.status()).tiny.refused[0].code, 'ERR_INSUFFICIENT_DISK')
    const lowRam = await newInstaller({ env: { totalRamMb: 64 } })
    await assert.rejects(
      lowRam.prestage({ ...m, min_ram_mb: 4096 }),
      (e: InstallError) => e.code === 'ERR_INSUFFICIENT_RAM',
    )
    const oldRt = await newInstaller({ env: { runtimeVersion: '2.0.0' } })
    await assert.rejects(oldRt.prestage(m), (e: InstallError) => e.code === 'ERR_RUNTIME_RANGE')
    assert.deepEqual((await installer.status()).tiny?.staged ?? [], [])
  })

  test('a file whose sha256 does not match the manifest never becomes model.gguf', async () => {
    const m = await makeRelease(store, 'tiny', '1.0.0', await gguf('v.gguf', 5))
    const bad = { ...m, file: { ...m.file, sha256: 'a'.repeat(64) } }
    await assert.rejects(installer.prestage(bad), (e: InstallError) => e.code === 'ERR_DIGEST_MISMATCH')
    assert.deepEqual(await readdir(join(dir, 'models/tiny/1.0.0')), [])
    await assert.rejects(installer.activate('tiny', '1.0.0'), (e: InstallError) => e.code === 'ERR_NOT_STAGED')
  })

  test('assembly checks in one pass: a wrong chunk size is refused at once, a wrong sha256 names the first bad block', async () => {
    const m = await makeRelease(store, 'tiny', '1.0.0', await gguf('v.gguf', 5))
    assert.ok(m.chunks.chunks.length >= 2, 'the fixture spans several chunks')
    const [c0, c1, ...rest] = m.chunks.chunks
    const sized = { ...m, chunks: { ...m.chunks, chunks: [c0, { ...c1, size: c1.size + 1 }, ...rest] } }
    await assert.rejects(
      installer.prestage(sized),
      (e: InstallError) => e.code === 'ERR_DIGEST_MISMATCH' && new RegExp(`block ${c1.block} holds`).test(e.message),
    )
    const hashed = {
      ...m,
      file: { ...m.file, sha256: 'b'.repeat(64) },
      chunks: { ...m.chunks, chunks: [c0, { ...c1, hash: 'c'.repeat(64) }, ...rest] },
    }
    await assert.rejects(
      installer.prestage(hashed),
      (e: InstallError) =>
        e.code === 'ERR_DIGEST_MISMATCH' &&
        new RegExp(`block ${c1.block} does not match chunk hash c{64}`).test(e.message),
    )
    assert.deepEqual(await readdir(join(dir, 'models/tiny/1.0.0')), [])
    // the genuine manifest still installs from the same blocks
    assert.deepEqual(await readFile(await installer.prestage(m)), await readFile(join(dir, 'v.gguf')))
  })

  test('start() removes stale partials and tmp links, keeps active', async () => {
    const m = await makeRelease(store, 'tiny', '1.0.0', await gguf('v.gguf', 5))
    await installer.prestage(m)
    await installer.activate('tiny', '1.0.0')
    await mkdir(join(dir, 'models/tiny/1.1.0'), { recursive: true })
    await writeFile(join(dir, 'models/tiny/1.1.0/model.gguf.partial'), 'half')
    await symlink('1.1.0', join(dir, 'models/tiny/.tmp-deadbeef'))
    await newInstaller()
    assert.deepEqual(await readdir(join(dir, 'models/tiny/1.1.0')), [])
    assert.deepEqual((await readdir(join(dir, 'models/tiny'))).sort(), ['1.0.0', '1.1.0', 'active'])
    assert.equal(await readlink(join(dir, 'models/tiny/active')), '1.0.0')
  })
})
