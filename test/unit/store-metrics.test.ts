/**
 * The message store's refused appends reach /metrics (`llmesh_store_write_errors_total{code}`,
 * `llmesh_store_disk_full`) and the `store` section of /status.
 */
import assert from 'node:assert/strict'
import { symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { statusOf } from '../../node/api/errors.ts'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { StoreWriteError } from '../../node/mesh/store-errors.ts'
import { createStoreMetrics, storeStatus } from '../../node/mesh/store-metrics.ts'
import { tmpDir } from '../helpers/index.ts'
import { report, reporter } from './store-fixtures.ts'

test('refused appends are counted by code in /metrics and shown in /status', async (t) => {
  const dir = await tmpDir(t)
  await symlink('/dev/full', join(dir, 'messages.jsonl'))
  const store = new MessageStore({ logger: silentLogger() }, { dataDir: dir })
  const metrics = createStoreMetrics(store)
  const before = await metrics.registry.metrics()
  assert.match(before, /^llmesh_store_disk_full 0$/m)
  assert.doesNotMatch(before, /llmesh_store_write_errors_total\{/)
  const r = await reporter()
  for (const seq of [1, 2]) {
    const m = await report(r, seq)
    await assert.rejects(store.put(m.verified, m.bytes), { code: 'ERR_DISK_FULL' })
  }
  const text = await metrics.registry.metrics()
  assert.match(text, /^llmesh_store_write_errors_total\{code="ENOSPC"\} 2$/m)
  assert.match(text, /^llmesh_store_disk_full 1$/m)
  assert.match(text, /^llmesh_store_messages 0$/m)
  const s = storeStatus(store)
  assert.equal(s.disk_full, true)
  assert.deepEqual(s.write_errors, { ENOSPC: 2 })
  assert.equal(s.last_error?.code, 'ERR_DISK_FULL')
  assert.equal(s.messages, 0)
})

test('a refusal for a full disk answers 507 on the API, another write error 500', () => {
  assert.equal(statusOf(new StoreWriteError('ENOSPC', 'full').code), 507)
  assert.equal(statusOf(new StoreWriteError('EDQUOT', 'quota').code), 507)
  assert.equal(statusOf(new StoreWriteError('EIO', 'io').code), 500)
})

test('an unknown system error code is exported as OTHER (bounded labels)', async () => {
  const store = new MessageStore({ logger: silentLogger() }, {})
  store.health.writeErrors.EWHATEVER = 3
  const text = await createStoreMetrics(store).registry.metrics()
  assert.match(text, /^llmesh_store_write_errors_total\{code="OTHER"\} 3$/m)
})
