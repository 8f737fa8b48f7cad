/**
 * The message store's crash-safety rules on real files: a put resolves only once its record is in
 * the log, concurrent puts share commits, a torn tail is cut without touching earlier records, an
 * unreadable record is skipped, the log is not rewritten at start unless it must be, compaction is
 * skipped when the disk has no room, and a failed write refuses the message and leaves memory as
 * the disk is.
 */
import assert from 'node:assert/strict'
import { appendFile, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import pino from 'pino'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { StoreWriteError } from '../../node/mesh/store-errors.ts'
import { tmpDir } from '../helpers/index.ts'
import { report, reporter } from './store-fixtures.ts'

const logger = silentLogger()
const HOUR = 60 * 60_000

function open(dir: string, extra: { freeBytes?: (dir: string) => Promise<number>; now?: () => number } = {}) {
  return new MessageStore({ logger, ...extra }, { dataDir: dir, healthRetentionMs: HOUR })
}

async function lines(dir: string): Promise<string[]> {
  return (await readFile(join(dir, 'messages.jsonl'), 'utf8')).split('\n')
}

describe('message store durability', () => {
  test('a put resolves once its record is in the log; concurrent puts share commits', async (t) => {
    const dir = await tmpDir(t)
    const r = await reporter()
    const store = open(dir)
    await store.load()
    const one = await report(r, 1)
    let events = 0
    store.on('health', () => events++)
    const p = store.put(one.verified, one.bytes)
    assert.equal(store.has(one.verified.digest), false, 'not in memory before it is durable')
    assert.equal(store.add(one.verified, one.bytes), false, 'a second add of a pending message is a duplicate')
    assert.equal(await p, true)
    assert.equal(events, 1)
    assert.ok(store.has(one.verified.digest))
    assert.equal(JSON.parse((await lines(dir))[0]).d, one.verified.digest)
    assert.equal(await store.put(one.verified, one.bytes), false, 'known: a duplicate')

    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => report(r, i + 2)))
    const before = store.writeStats()
    const done = await Promise.all(many.map((m) => store.put(m.verified, m.bytes)))
    assert.ok(done.every((x) => x === true))
    const after = store.writeStats()
    assert.equal(after.lines - before.lines, 50)
    assert.ok(after.commits - before.commits < 50, `group commit: ${after.commits - before.commits} commits for 50`)
    assert.equal((await lines(dir)).filter((l) => l !== '').length, 51)
    assert.equal((await stat(join(dir, 'messages.jsonl'))).mode & 0o777, 0o600)
  })

  test('a torn last record is truncated away and the next append starts on a fresh line', async (t) => {
    const dir = await tmpDir(t)
    const r = await reporter()
    const first = open(dir)
    await first.load()
    const msgs = await Promise.all([1, 2, 3].map((i) => report(r, i)))
    for (const m of msgs) await first.put(m.verified, m.bytes)
    const file = join(dir, 'messages.jsonl')
    const good = await readFile(file)
    await appendFile(file, '{"d":"0123","t":17')
    const second = open(dir)
    await second.load()
    assert.equal(second.size, 3)
    assert.equal(second.health.load.tornBytes, 18)
    assert.deepEqual(await readFile(file), good, 'cut back to the last complete record, earlier ones untouched')
    const four = await report(r, 4)
    assert.equal(await second.put(four.verified, four.bytes), true)
    const third = open(dir)
    await third.load()
    assert.equal(third.size, 4)
    assert.equal(third.health.load.bad, 0, 'no record glued to a fragment')
    assert.ok((await readFile(file, 'utf8')).endsWith('\n'))
  })

  test('a store used before load also cuts a torn tail before its first append', async (t) => {
    const dir = await tmpDir(t)
    const r = await reporter()
    await writeFile(join(dir, 'messages.jsonl'), '{"torn')
    const store = open(dir)
    const m = await report(r, 1)
    assert.equal(await store.put(m.verified, m.bytes), true)
    const again = open(dir)
    await again.load()
    assert.equal(again.size, 1)
    assert.equal(again.health.load.bad, 0)
  })

  test('an unreadable record in the middle is counted and skipped, and the file is not rewritten', async (t) => {
    const dir = await tmpDir(t)
    const r = await reporter()
    const first = open(dir)
    const msgs = await Promise.all([1, 2, 3, 4].map((i) => report(r, i)))
    for (const m of msgs.slice(0, 2)) await first.put(m.verified, m.bytes)
    const file = join(dir, 'messages.jsonl')
    await appendFile(file, 'not json\n')
    const later = open(dir) // another process's store: it appends after the bad line
    for (const m of msgs.slice(2)) await later.put(m.verified, m.bytes)
    const before = await stat(file)
    const bytes = await readFile(file)
    const second = open(dir)
    await second.load()
    assert.equal(second.size, 4)
    assert.equal(second.health.load.bad, 1)
    assert.equal(second.health.load.compaction, 'none')
    const after = await stat(file)
    assert.equal(after.ino, before.ino, 'the same file: not rewritten at start')
    assert.deepEqual(await readFile(file), bytes)
  })

  test('the log is compacted when most of it is dead, and not when the disk has no room for it', async (t) => {
    const r = await reporter()
    const now = Date.now()
    const stale = await Promise.all([1, 2, 3].map((i) => report(r, i, now - 3 * HOUR)))
    const fresh = await report(r, 4, now)
    const write = async (dir: string) => {
      // written while they were fresh (a store refuses a report already past the retention)
      const s = open(dir, { now: () => now - 3 * HOUR })
      for (const m of stale) await s.put(m.verified, m.bytes, now - 3 * HOUR)
      await s.put(fresh.verified, fresh.bytes, now)
    }
    // room: compacted to the one live record (a new file, renamed)
    const roomy = await tmpDir(t)
    await write(roomy)
    const ino = (await stat(join(roomy, 'messages.jsonl'))).ino
    const a = open(roomy)
    await a.load()
    assert.equal(a.size, 1)
    assert.equal(a.health.load.compaction, 'done')
    assert.equal((await lines(roomy)).filter((l) => l !== '').length, 1)
    assert.notEqual((await stat(join(roomy, 'messages.jsonl'))).ino, ino)
    // no room: compaction skipped, the old file kept whole, the store loads and appends
    const full = await tmpDir(t)
    await write(full)
    const bytes = await readFile(join(full, 'messages.jsonl'))
    const b = open(full, { freeBytes: async () => 1000 })
    await b.load()
    assert.equal(b.size, 1)
    assert.equal(b.health.load.compaction, 'skipped: no-space')
    assert.deepEqual(await readFile(join(full, 'messages.jsonl')), bytes)
    const next = await report(r, 5)
    assert.equal(await b.put(next.verified, next.bytes), true)
    const c = open(full, { freeBytes: async () => 1000 })
    await c.load()
    assert.equal(c.size, 2)
  })

  test('a write that fails refuses the message with ERR_DISK_FULL and keeps memory as the disk is', async (t) => {
    const dir = await tmpDir(t)
    const r = await reporter()
    // every write to /dev/full fails with ENOSPC
    await symlink('/dev/full', join(dir, 'messages.jsonl'))
    const store = open(dir)
    const m = await report(r, 1)
    let events = 0
    store.on('message', () => events++)
    await assert.rejects(
      store.put(m.verified, m.bytes),
      (e: StoreWriteError) => e instanceof StoreWriteError && e.code === 'ERR_DISK_FULL' && e.errno === 'ENOSPC',
    )
    assert.equal(store.has(m.verified.digest), false)
    assert.equal(store.size, 0)
    assert.equal(events, 0)
    assert.equal(store.health.writeErrors.ENOSPC, 1)
    assert.equal(store.health.diskFull, true)
    assert.equal(store.health.lastError?.code, 'ERR_DISK_FULL')
    // add() (fire and forget) refuses the same way, counted
    assert.equal(store.add(m.verified, m.bytes), true)
    await store.flush()
    assert.equal(store.has(m.verified.digest), false)
    assert.equal(store.health.writeErrors.ENOSPC, 2)
  })

  test('a full disk is logged once, not once per refused message, and its end is logged', async (t) => {
    const dir = await tmpDir(t)
    const r = await reporter()
    const file = join(dir, 'messages.jsonl')
    await symlink('/dev/full', file)
    const lines: Array<{ level: number; msg: string }> = []
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) })
    const store = new MessageStore({ logger: log }, { dataDir: dir })
    for (let i = 0; i < 10; i++) {
      const m = await report(r, i)
      await store.put(m.verified, m.bytes).catch(() => {})
    }
    assert.equal(store.health.writeErrors.ENOSPC, 10)
    assert.equal(lines.filter((l) => l.level === 50).length, 1)
    // room again (the link replaced by a real file): the next append succeeds and says so
    await rm(file)
    const ok = new MessageStore({ logger: log }, { dataDir: dir })
    Object.assign(ok.health, { diskFull: true })
    const m = await report(r, 99)
    assert.equal(await ok.put(m.verified, m.bytes), true)
    assert.equal(ok.health.diskFull, false)
    assert.ok(lines.some((l) => l.msg.startsWith('message store writes again')))
  })
})
