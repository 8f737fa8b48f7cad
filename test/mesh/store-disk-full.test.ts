/**
 * A running seed daemon whose message log stops taking writes (its file replaced by /dev/full,
 * where every write fails with ENOSPC): publishing is refused with ERR_DISK_FULL and nothing is
 * stored, /status (`store`) and /metrics say the disk is full, the messages accepted before are
 * kept, and once the disk has room again publishing works and the daemon restarts with everything
 * it accepted.
 */
import assert from 'node:assert/strict'
import { rename, symlink, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { silentLogger } from '../../node/logger.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { tmpDir } from '../helpers/index.ts'
import { command, makeFleet } from './fixtures.ts'

interface StoreSection {
  messages: number
  disk_full: boolean
  write_errors: Record<string, number>
  last_error: { code: string } | null
}

test('a full disk refuses new messages, shows in /status and /metrics, and loses nothing accepted', async (t) => {
  const dir = await tmpDir(t, 'llmesh-store-full-')
  const fleet = makeFleet()
  const make = () =>
    createSeedDaemon({
      fleet: { id: fleet.id, psk: fleet.psk, trust: fleet.trust },
      dataDir: join(dir, 'seed'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      api: '127.0.0.1:0',
      mdns: false,
      logger: silentLogger(),
      tags: ['seed'],
      signer: fleet.signer,
    })
  let seed = make()
  t.after(() => seed.stop())
  await seed.start()
  const store = async () => ((await (await fetch(`${seed.apiUrl}/status`)).json()) as { store: StoreSection }).store
  const metrics = async () => (await fetch(`${seed.apiUrl}/metrics`)).text()

  assert.equal((await seed.context.publish(await command(fleet))).status, 'accepted')
  const held = seed.context.store.size
  assert.equal((await store()).disk_full, false)
  assert.match(await metrics(), /^llmesh_store_disk_full 0$/m)

  // the disk fills up
  const file = join(dir, 'seed', 'messages.jsonl')
  await rename(file, `${file}.saved`)
  await symlink('/dev/full', file)
  await assert.rejects(seed.context.publish(await command(fleet)), { code: 'ERR_DISK_FULL' })
  assert.equal(seed.context.store.size, held, 'the refused message is not stored')
  const s = await store()
  assert.equal(s.disk_full, true)
  assert.equal(s.write_errors.ENOSPC, 1)
  assert.equal(s.last_error?.code, 'ERR_DISK_FULL')
  const text = await metrics()
  assert.match(text, /^llmesh_store_write_errors_total\{code="ENOSPC"\} 1$/m)
  assert.match(text, /^llmesh_store_disk_full 1$/m)

  // room again: publishing works, and a restart keeps everything accepted
  await unlink(file)
  await rename(`${file}.saved`, file)
  assert.equal((await seed.context.publish(await command(fleet))).status, 'accepted')
  assert.equal((await store()).disk_full, false)
  const accepted = seed.context.store.size
  await seed.stop()
  seed = make()
  await seed.start()
  assert.equal(seed.context.store.size, accepted)
})
