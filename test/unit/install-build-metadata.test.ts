/**
 * Versions whose build metadata holds `_` or upper case (`+gguf-q4_0`, `q4_K_M`, `Q8_0`), which
 * `semver.valid()` refuses: compared by core + prerelease (protocols/version.ts), they are listed
 * as staged, garbage-collected, and counted in a release's "prestaged N/N".
 */
import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Installer } from '../../node/install/installer.ts'
import { silentLogger } from '../../node/logger.ts'
import { ModelStore } from '../../node/store/model-store.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { tmpDir } from '../helpers/index.ts'
import { makeRelease } from './install-fixtures.ts'
import { add, healthReport, release, setup, ticks } from './rollout-fakes.ts'

const BUILDS = ['1.0.0+gguf-f16', '1.1.0+gguf-q4_0', '1.2.0+gguf-q4_K_M', '1.3.0+gguf-Q8_0']

describe('builds with _ in their metadata on a device', () => {
  test('listed as staged, collected by GC, and counted as prestaged', async (t) => {
    const dir = await tmpDir(t, 'install-build-')
    const store = new ModelStore({ dataDir: dir })
    await store.start()
    const keepAll = new Installer({ store, logger: silentLogger() }, { dataDir: dir, keepVersions: 10 })
    await keepAll.start()
    try {
      const manifests = []
      for (const [i, v] of BUILDS.entries()) {
        const f = join(dir, `v${i}.gguf`)
        await writeTinyGguf(f, { layers: 2, embd: 64, seed: 5, perturbLayer: i % 2 })
        manifests.push(await makeRelease(store, 'tiny', v, f))
        await keepAll.prestage(manifests[i])
      }
      // same core, two builds: both listed, in a fixed order
      const f = join(dir, 'same-core.gguf')
      await writeTinyGguf(f, { layers: 2, embd: 64, seed: 6 })
      await keepAll.prestage(await makeRelease(store, 'tiny', '1.3.0+gguf-F16', f))
      const staged = (await keepAll.status()).tiny.staged
      assert.deepEqual(staged, ['1.3.0+gguf-Q8_0', '1.3.0+gguf-F16', ...[...BUILDS].reverse().slice(1)])
      await keepAll.activate('tiny', '1.1.0+gguf-q4_0')
      await keepAll.stop()

      // keep 2: the active version and the newest stay, the rest goes, from the disk too
      const keepOne = new Installer({ store, logger: silentLogger() }, { dataDir: dir, keepVersions: 2 })
      await keepOne.start()
      const removed = await keepOne.gc('tiny')
      assert.deepEqual(removed.sort(), ['1.0.0+gguf-f16', '1.2.0+gguf-q4_K_M', '1.3.0+gguf-F16'].sort())
      const st = (await keepOne.status()).tiny
      assert.deepEqual(st.staged, ['1.3.0+gguf-Q8_0', '1.1.0+gguf-q4_0'])
      const onDisk = (await readdir(join(dir, 'models', 'tiny'))).filter((e) => e !== 'active').sort()
      assert.deepEqual(onDisk, ['1.1.0+gguf-q4_0', '1.3.0+gguf-Q8_0'])

      // "prestaged N/N": the device's health report claims what the installer lists as staged
      const s = await setup()
      for (const [i, v] of BUILDS.entries()) add(s.store, release(v, i + 1))
      await s.controller.start()
      await ticks(s.controller, 1)
      add(s.store, healthReport(s.me.peerId, 1, { staged: st.staged.map((version) => ({ model: 'tiny', version })) }))
      const pre = (v: string) => s.controller.statusJson().releases.find((r) => r.version === v)?.prestaged
      assert.deepEqual(pre('1.3.0+gguf-Q8_0'), { devices: 1, of: 1, missing: [] })
      assert.deepEqual(pre('1.1.0+gguf-q4_0'), { devices: 1, of: 1, missing: [] })
      assert.deepEqual(pre('1.2.0+gguf-q4_K_M'), { devices: 0, of: 1, missing: [s.me.peerId] })
      await s.controller.stop()
      await keepOne.stop()
    } finally {
      await store.stop()
    }
  })
})
