/**
 * Installer deactivation (a bad version with nothing to go back to): `active` and `previous`
 * links go away, the files stay until GC may take them (no link names them any more), a later
 * activation starts clean (no stale `previous`), a restart keeps the deactivated state, and
 * `rollback` still refuses with ERR_NO_PREVIOUS.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
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

async function release(version: string, perturbLayer?: number) {
  const p = join(dir, `${version}.gguf`)
  await writeTinyGguf(p, { layers: 2, embd: 64, seed: 5, ...(perturbLayer !== undefined ? { perturbLayer } : {}) })
  return makeRelease(store, 'tiny', version, p)
}

async function newInstaller(keepVersions?: number): Promise<Installer> {
  const i = new Installer({ store, logger: silentLogger() }, { dataDir: dir, keepVersions })
  await i.start()
  return i
}

describe('installer deactivation', () => {
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'install-deact-'))
    store = new ModelStore({ dataDir: dir })
    await store.start()
    installer = await newInstaller()
  })
  afterEach(async () => {
    await installer.stop()
    await store.stop()
    await rm(dir, { recursive: true, force: true })
  })

  test('a first release deactivated: no active link, files kept, rollback still refuses', async () => {
    await installer.prestage(await release('1.0.0'))
    await installer.activate('tiny', '1.0.0')
    await assert.rejects(installer.rollback('tiny'), (e: InstallError) => e.code === 'ERR_NO_PREVIOUS')
    assert.equal(await installer.deactivate('tiny'), '1.0.0')
    const st = (await installer.status()).tiny
    assert.equal(st.active, null)
    assert.equal(st.previous, null)
    assert.deepEqual(st.staged, ['1.0.0'])
    assert.equal(await installer.activeFile('tiny'), null)
    const entries = await readdir(join(dir, 'models/tiny'))
    assert.deepEqual(entries.sort(), ['1.0.0'], `links or tmp leftovers: ${entries}`)
    // idempotent, and a restart keeps it deactivated
    assert.equal(await installer.deactivate('tiny'), null)
    await installer.stop()
    installer = await newInstaller()
    assert.equal((await installer.status()).tiny.active, null)
  })

  test('a stale previous is dropped too, so a later activation never rolls back onto a bad version', async () => {
    await installer.prestage(await release('1.0.0'))
    await installer.prestage(await release('1.1.0', 1))
    await installer.prestage(await release('2.0.0', 0))
    await installer.activate('tiny', '1.0.0')
    await installer.activate('tiny', '1.1.0') // previous = 1.0.0 (say it was bad too)
    assert.equal(await installer.deactivate('tiny'), '1.1.0')
    let st = (await installer.status()).tiny
    assert.equal(st.active, null)
    assert.equal(st.previous, null)
    await installer.activate('tiny', '2.0.0')
    st = (await installer.status()).tiny
    assert.equal(st.active, '2.0.0')
    assert.equal(st.previous, null)
    await assert.rejects(installer.rollback('tiny'), (e: InstallError) => e.code === 'ERR_NO_PREVIOUS')
  })

  test('GC keeps what a link names; once deactivated, the bad version is no longer protected', async () => {
    await installer.stop()
    installer = await newInstaller(2)
    await installer.prestage(await release('1.0.0'))
    await installer.activate('tiny', '1.0.0')
    await installer.prestage(await release('2.0.0', 1))
    await installer.prestage(await release('3.0.0', 0))
    // keep = 2, but the oldest stays while `active` names it
    assert.deepEqual((await installer.status()).tiny.staged, ['3.0.0', '1.0.0'])
    await installer.deactivate('tiny')
    await installer.prestage(await release('4.0.0', 1))
    assert.deepEqual((await installer.status()).tiny.staged, ['4.0.0', '3.0.0'])
    await installer.activate('tiny', '4.0.0')
    assert.equal((await installer.status()).tiny.active, '4.0.0')
  })
})
