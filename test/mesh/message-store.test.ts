import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { Ingest } from '../../node/mesh/ingest.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { wireMessageId } from '../../protocols/index.ts'
import { command, enrollment, healthReport, makeFleet, tempDir } from './fixtures.ts'

const logger = silentLogger()

describe('message store', () => {
  test('keeps verified messages across a restart, indexed, and drops stale health reports', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const fleet = makeFleet()
      const key = await generateKeyPair('Ed25519')
      const device = peerIdFromPrivateKey(key).toString()
      const now = Date.now()
      // its clock 90 min behind while the 2 h old report is stored: not past the retention yet then
      let behind = 90 * 60_000
      const store = new MessageStore(
        { logger, now: () => Date.now() - behind },
        { dataDir: dir, healthRetentionMs: 60 * 60_000 },
      )
      await store.load()
      const ingest = new Ingest({ store, verify: createFleetVerifier({ trust: fleet.trust, store }), logger }, {})
      const seen: string[] = []
      store.on('enrollment', (m) => seen.push(`enrollment:${m.message.device}`))
      store.on('health', (m) => seen.push(`health:${m.message.seq}`))
      assert.equal((await ingest.ingest(await enrollment(fleet, device), 'local')).status, 'accepted')
      assert.equal((await ingest.ingest(await command(fleet), 'local')).status, 'accepted')
      assert.equal(
        (await ingest.ingest(await healthReport(fleet, key, 1, now - 2 * 60 * 60_000), 'local')).status,
        'accepted',
      )
      behind = 0
      assert.equal((await ingest.ingest(await healthReport(fleet, key, 2, now), 'local')).status, 'accepted')
      // replays are duplicates; an older enrollment is a rollback
      assert.equal((await ingest.ingest(await healthReport(fleet, key, 2, now), 'gossip')).status, 'duplicate')
      const old = await enrollment(fleet, device, Date.now() - 60_000)
      assert.equal((await ingest.ingest(old, 'gossip')).status, 'rejected')
      assert.equal(ingest.wasRejected(wireMessageId(old) as string), true)
      assert.deepEqual(seen, [`enrollment:${device}`, 'health:1', 'health:2'])
      assert.equal(store.forDevice(device).length, 3)
      assert.equal(store.forModel('tiny').length, 1)
      assert.ok(store.isEnrolled(device))
      // the stale report is not offered to anti-entropy
      assert.equal(store.syncDigests().length, 3)
      await store.flush()
      assert.equal((await stat(join(dir, 'messages.jsonl'))).mode & 0o777, 0o600)

      const again = new MessageStore({ logger }, { dataDir: dir, healthRetentionMs: 60 * 60_000 })
      await again.load()
      assert.equal(again.size, 3, 'the stale health report is dropped on load')
      assert.ok(again.isEnrolled(device))
      assert.deepEqual(
        again.list('HealthReport').map((m) => m.message.seq),
        [2],
      )
      const lines = (await readFile(join(dir, 'messages.jsonl'), 'utf8')).trim().split('\n')
      // one dead record of four is below the compaction threshold: the log is not rewritten at start
      assert.equal(lines.length, 4, 'the log is not rewritten for one stale record')
      assert.equal(again.health.load.compaction, 'none')
      // the rollback floor survives the restart
      const verify = createFleetVerifier({ trust: fleet.trust, store: again })
      const r = await verify(await enrollment(fleet, device, Date.now() - 30_000), Date.now())
      assert.equal(r.ok, false)
      assert.equal(r.ok ? '' : r.error.code, 'ERR_ROLLBACK')
    } finally {
      await cleanup()
    }
  })
})
