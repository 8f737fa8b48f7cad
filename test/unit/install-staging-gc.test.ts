/**
 * Interrupted downloads (a staging file and its download.json) that will never resume are dropped;
 * the newest one, newer than everything installed, is kept to resume; an unusable download.json is
 * not trusted; the disk check counts one copy of the file, less what a resumed download holds.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { DISK_RESERVE_BYTES, STAGING_INDEX_BYTES_PER_BLOCK } from '../../node/install/constants.ts'
import type { InstallError } from '../../node/install/errors.ts'
import { Installer } from '../../node/install/installer.ts'
import { InstallLayout } from '../../node/install/layout.ts'
import { staleDownloads } from '../../node/install/staging-gc.ts'
import { silentLogger } from '../../node/logger.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { tmpDir } from '../helpers/index.ts'
import { makeRelease } from './install-fixtures.ts'

describe('staleDownloads (rule)', () => {
  test('keeps only the newest interrupted download, and only if nothing as new is installed or coming', () => {
    assert.deepEqual(staleDownloads([], ['1.0.0']), [])
    assert.deepEqual(staleDownloads(['2.0.0'], ['1.0.0']), [])
    assert.deepEqual(staleDownloads(['2.0.0', '1.5.0', '1.2.0'], ['1.0.0']).sort(), ['1.2.0', '1.5.0'])
    assert.deepEqual(staleDownloads(['1.5.0'], ['1.0.0', '2.0.0']), ['1.5.0'])
    assert.deepEqual(staleDownloads(['2.0.0'], ['2.0.0']), ['2.0.0'], 'as new as an installed version')
    assert.deepEqual(staleDownloads(['2.0.0', '3.0.0'], [], '3.0.0'), ['2.0.0'], 'the one in flight stays')
    assert.deepEqual(staleDownloads(['2.0.0'], ['1.0.0'], '2.1.0'), ['2.0.0'], 'a newer one is coming')
    assert.deepEqual(staleDownloads(['2.2.0'], ['1.0.0'], '2.1.0'), [])
  })
})

describe('installer: interrupted downloads and the disk check', () => {
  let dir: string
  let store: ModelStore
  let layout: InstallLayout
  const installers: Installer[] = []
  const releases = new Map<string, ReleaseManifest>()
  const release = (v: string) => releases.get(v) as ReleaseManifest

  /** A started installer on the data directory: the one before it stops first (one per directory, as on a device). */
  async function installer(extra: Partial<ConstructorParameters<typeof Installer>[1]> = {}): Promise<Installer> {
    for (const earlier of installers.splice(0)) await earlier.stop()
    const i = new Installer({ store, logger: silentLogger() }, { dataDir: dir, ...extra })
    await i.start()
    installers.push(i)
    return i
  }

  /** Leaves `version` as a download cut short: download.json and `bytes` of its staging file. */
  async function interrupted(version: string, manifest: string, bytes = 4096): Promise<void> {
    await mkdir(layout.versionDir('tiny', version), { recursive: true })
    await writeFile(layout.stagingManifest('tiny', version), manifest)
    await writeFile(layout.staging('tiny', version), Buffer.alloc(bytes, 7))
  }

  const versions = async () => (await readdir(layout.modelDir('tiny'))).filter((e) => /^\d/.test(e)).sort()

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'staging-gc-'))
    store = new ModelStore({ dataDir: dir })
    await store.start()
    layout = new InstallLayout(dir)
    let seed = 1
    for (const v of ['1.0.0', '1.5.0', '2.0.0', '2.5.0', '3.0.0', '4.0.0', '5.0.0']) {
      const f = join(dir, `${v}.gguf`)
      await writeTinyGguf(f, { layers: 2, embd: 64, seed: seed++ })
      releases.set(v, await makeRelease(store, 'tiny', v, f))
    }
  })
  after(async () => {
    for (const i of installers) await i.stop()
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  })

  test('at start, a download older than an installed version and an unusable download.json are removed', async () => {
    const i = await installer()
    await i.prestage(release('1.0.0'))
    await i.prestage(release('2.0.0'))
    await interrupted('1.5.0', JSON.stringify(release('1.5.0')))
    await interrupted('2.5.0', JSON.stringify(release('2.5.0')))
    await interrupted('3.0.0', JSON.stringify(release('2.5.0'))) // another release's manifest
    await interrupted('2.2.0', '{"model": "tiny", "version": "2.2.0"') // torn
    await i.stop()
    await installer()
    assert.deepEqual(await versions(), ['1.0.0', '2.0.0', '2.5.0'], 'superseded and unusable downloads gone')
    assert.deepEqual((await readdir(layout.versionDir('tiny', '2.5.0'))).sort(), [
      'download.json',
      'model.gguf.download',
    ])
  })

  test('GC after a newer version is installed drops the download it superseded', async () => {
    const i = await installer()
    await i.prestage(release('3.0.0')) // prestage runs GC afterwards
    assert.deepEqual(await versions(), ['1.0.0', '2.0.0', '3.0.0'])
  })

  test('the disk check counts one copy of the file, less what a resumed download already wrote', async (t) => {
    // a device: a second store that replicates the seed's, so every block is missing
    const ddir = await tmpDir(t, 'staging-gc-device-')
    const device = new ModelStore({ dataDir: ddir })
    await device.start()
    const s1 = store.store.replicate(true)
    const s2 = device.store.replicate(false)
    s1.pipe(s2).pipe(s1)
    const dlayout = new InstallLayout(ddir)
    const started: Installer[] = []
    t.after(async () => {
      for (const i of started) await i.stop()
      s1.destroy()
      s2.destroy()
      await device.stop()
    })
    const withFree = async (bytes: number) => {
      for (const earlier of started.splice(0)) await earlier.stop()
      const i = new Installer(
        { store: device, logger: silentLogger() },
        { dataDir: ddir, statfs: async () => ({ bavail: bytes / 64, bsize: 64 }) },
      )
      await i.start()
      started.push(i)
      return i
    }
    const need = (m: ReleaseManifest) =>
      m.file.size + m.chunks.chunks.length * STAGING_INDEX_BYTES_PER_BLOCK + DISK_RESERVE_BYTES
    const m = release('4.0.0')
    await assert.rejects((await withFree(need(m) - 64)).prestage(m), (e: InstallError) => {
      assert.equal(e.code, 'ERR_INSUFFICIENT_DISK')
      assert.match(e.message, /needs [\d.]+ MiB of free disk .* [\d.]+ MiB free/)
      return true
    })
    // one copy of the file fits (before, a download needed room for its blocks in the store and the file)
    assert.equal(await (await withFree(need(m))).prestage(m), dlayout.file('tiny', '4.0.0'))
    // half of the file already downloaded (a download cut short): it needs that much less
    const n = release('5.0.0')
    const half = Math.floor(n.file.size / 2 / 4096) * 4096
    await mkdir(dlayout.versionDir('tiny', '5.0.0'), { recursive: true })
    await writeFile(dlayout.stagingManifest('tiny', '5.0.0'), JSON.stringify(n))
    await writeFile(dlayout.staging('tiny', '5.0.0'), Buffer.alloc(half, 7))
    assert.equal(await (await withFree(need(n) - 64)).prestage(n), dlayout.file('tiny', '5.0.0'))
  })
})
