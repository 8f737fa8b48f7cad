/**
 * Assembly on a full disk (issue #11): the device's data directory is a size-limited tmpfs made by
 * the test; the disk fills up while a new version is assembled. The partial file is removed at once
 * (no restart needed), the refusal is recorded as ERR_INSUFFICIENT_DISK, the active version stays
 * in place and intact, and once room is made the same release installs from the blocks already held.
 * Needs root to mount (skipped otherwise, unless CI=true).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, statfs, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { hashFile } from '../../node/install/assemble.ts'
import { InstallError } from '../../node/install/errors.ts'
import { Installer } from '../../node/install/installer.ts'
import { silentLogger } from '../../node/logger.ts'
import { fetchRelease } from '../../node/store/fetcher.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { cleanup, connectAll, startPeer } from '../mesh/distribution-helpers.ts'
import { makeRelease } from './install-fixtures.ts'

const run = promisify(execFile)

test('a disk that fills up during assembly: partial removed at once, clear refusal, active intact', async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') assert.fail('the ENOSPC test needs root (mount -t tmpfs) in CI')
    t.skip('needs root to mount a size-limited tmpfs')
    return
  }
  const base = await mkdtemp(join(tmpdir(), 'llmesh-asm-enospc-'))
  const mnt = join(base, 'data')
  await mkdir(mnt)
  await run('mount', ['-t', 'tmpfs', '-o', 'size=80m', 'tmpfs', mnt])
  const seed = await startPeer('seed-enospc')
  const dev = await startPeer('dev-enospc', mnt)
  t.after(async () => {
    await cleanup([seed, dev]).catch(() => {})
    await run('umount', [mnt]).catch(() => {})
    await rm(base, { recursive: true, force: true })
  })
  const v1File = join(seed.dataDir, 'v1.gguf')
  const v2File = join(seed.dataDir, 'v2.gguf')
  await writeTinyGguf(v1File, { layers: 2, embd: 256, seed: 3 })
  await writeTinyGguf(v2File, { layers: 4, embd: 384, seed: 4 })
  const m1 = await makeRelease(seed.store, 'tiny', '1.0.0', v1File)
  const m2 = await makeRelease(seed.store, 'tiny', '2.0.0', v2File)
  await connectAll([seed, dev])
  // the free-disk check before a download sees plenty of room: the disk fills up later, by surprise
  const inst = new Installer(
    { store: dev.store, logger: silentLogger() },
    { dataDir: mnt, statfs: async () => ({ bavail: 1 << 30, bsize: 4096 }) },
  )
  await inst.start()
  await inst.prestage(m1)
  await inst.activate('tiny', '1.0.0')
  await fetchRelease(dev.store, m2.chunks)

  // something else takes the disk: half of v2's size is left
  const free = async () => {
    const s = await statfs(mnt)
    return s.bavail * s.bsize
  }
  const filler = join(mnt, 'filler')
  await writeFile(filler, Buffer.alloc(Math.max(0, (await free()) - Math.floor(m2.file.size / 2))))
  const before = await free()
  t.diagnostic(`${before} bytes free for a ${m2.file.size}-byte file`)

  const err = await inst.prestage(m2).then(
    () => null,
    (e: unknown) => e,
  )
  assert.ok(err instanceof InstallError, String(err))
  assert.equal(err.code, 'ERR_INSUFFICIENT_DISK')
  assert.match(err.message, /ENOSPC|EDQUOT/)
  assert.deepEqual(await readdir(inst.layout.versionDir('tiny', '2.0.0')), [], 'no partial, no manifest left')
  assert.ok((await free()) >= before, 'the partial gave its space back at once')
  const st = (await inst.status()).tiny
  assert.equal(st.active, '1.0.0')
  assert.deepEqual(st.staged, ['1.0.0'])
  assert.deepEqual(
    st.refused.map((r) => [r.version, r.code]),
    [['2.0.0', 'ERR_INSUFFICIENT_DISK']],
  )
  const active = await inst.activeFile('tiny')
  assert.equal(active, inst.layout.file('tiny', '1.0.0'))
  assert.equal((await hashFile(active)).sha256, m1.file.sha256, 'the active file is intact')

  // room again: the same release installs from the blocks already held, nothing re-downloaded
  await rm(filler)
  const bytesIn = dev.replicator.stats().bytesIn
  const path = await inst.prestage(m2)
  assert.equal((await hashFile(path)).sha256, m2.file.sha256)
  assert.ok(dev.replicator.stats().bytesIn - bytesIn < 64 * 1024, 'no block fetched again')
})
