/**
 * The message store on a full disk: a 1 MiB tmpfs made by the test, filled by appends until the
 * disk refuses them. No accepted message is lost, every refusal is ERR_DISK_FULL and leaves the
 * message out of memory, no record is torn, and the store loads again on the full disk (a
 * compaction it would want is skipped for lack of room, not fatal). Needs root to mount (skipped
 * otherwise, unless CI=true).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { silentLogger } from '../../node/logger.ts'
import { readLog } from '../../node/mesh/message-log.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { StoreWriteError } from '../../node/mesh/store-errors.ts'
import { report, reporter } from './store-fixtures.ts'

const run = promisify(execFile)
const logger = silentLogger()

test('a full disk refuses new messages and loses no accepted one', async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') assert.fail('the ENOSPC test needs root (mount -t tmpfs) in CI')
    t.skip('needs root to mount a size-limited tmpfs')
    return
  }
  const base = await mkdtemp(join(tmpdir(), 'llmesh-enospc-'))
  const mnt = join(base, 'data')
  await mkdir(mnt)
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt])
  t.after(async () => {
    await run('umount', [mnt]).catch(() => {})
    await rm(base, { recursive: true, force: true })
  })
  const r = await reporter()
  const store = new MessageStore({ logger }, { dataDir: mnt })
  await store.load()
  const acked: string[] = []
  const refused: string[] = []
  let seq = 0
  // 8 puts in flight until 200 have been refused
  const worker = async () => {
    while (refused.length < 200) {
      const m = await report(r, seq++)
      try {
        if (await store.put(m.verified, m.bytes)) acked.push(m.verified.digest)
      } catch (err) {
        assert.ok(err instanceof StoreWriteError, String(err))
        assert.equal(err.code, 'ERR_DISK_FULL')
        refused.push(m.verified.digest)
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  t.diagnostic(`${acked.length} accepted, ${refused.length} refused on a 1 MiB tmpfs`)
  assert.ok(acked.length > 100, `accepted ${acked.length}`)
  assert.equal(store.size, acked.length, 'memory holds exactly what the disk holds')
  assert.ok(refused.every((d) => !store.has(d)))
  assert.ok((store.health.writeErrors.ENOSPC ?? 0) > 0)
  assert.equal(store.health.diskFull, true)

  const file = join(mnt, 'messages.jsonl')
  const found = await readLog(file)
  assert.equal(found.torn, 0, 'no torn record')
  assert.equal(found.bad, 0, 'no unreadable record')
  assert.ok((await readFile(file, 'utf8')).endsWith('\n'))
  assert.deepEqual(new Set(found.records.map((x) => x.message.digest)), new Set(acked))

  // restart on the full disk
  const again = new MessageStore({ logger }, { dataDir: mnt })
  await again.load()
  assert.deepEqual(
    acked.filter((d) => !again.has(d)),
    [],
  )
  // one at a time a record may still fit where a batch of 8 did not: appends go on until refused
  for (let i = 0; ; i++) {
    assert.ok(i < 50, 'the full disk never refused a single append')
    const more = await report(r, seq++)
    const ok = await again.put(more.verified, more.bytes).catch((e: StoreWriteError) => e)
    if (ok === true) acked.push(more.verified.digest)
    else {
      assert.equal((ok as StoreWriteError).code, 'ERR_DISK_FULL')
      break
    }
  }
  assert.equal(again.size, acked.length)

  // two days later every report is stale: load wants to compact, has no room, keeps the file
  const later = new MessageStore({ logger, now: () => Date.now() + 2 * 24 * 60 * 60_000 }, { dataDir: mnt })
  await later.load()
  assert.equal(later.health.load.compaction, 'skipped: no-space')
  assert.equal((await readLog(file)).records.length, acked.length, 'the old file is kept whole')
})
