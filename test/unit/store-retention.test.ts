/**
 * Retention rules and per-signer quotas of the message store (docs/protocol.md, "Message
 * retention"). The store never verifies, so messages here carry their canonical JSON as bytes
 * (sized where a test needs it) and an id derived from it.
 */
import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore, type MessageStoreInit } from '../../node/mesh/message-store.ts'
import { REPORT_QUOTA_BYTES } from '../../node/mesh/store-constants.ts'
import { StoreQuotaError } from '../../node/mesh/store-errors.ts'
import { createStoreMetrics } from '../../node/mesh/store-metrics.ts'
import { storeWireBound } from '../../node/mesh/store-retention.ts'
import type { AnyMessage } from '../../node/mesh/types.ts'
import { MAX_SIZE } from '../../protocols/constants.ts'
import { canonicalBytes, sha256Hex } from '../../protocols/encoding.ts'
import { VOTE_MAX_AGE_MS } from '../../protocols/rollout/constants.ts'
import {
  exampleCommand,
  exampleEnrollment,
  exampleHealthReport,
  examplePolicy,
  exampleRelease,
  exampleVerdict,
  NOW,
  PEER_A,
} from '../fixtures/messages.ts'
import { tmpDir } from '../helpers/index.ts'
import { reporter, report as signedReport } from './store-fixtures.ts'

const MIN = 60_000
const HOUR = 60 * MIN
const PEER_B = '12D3KooWB8rxX8sZfRGnJqyAQJoXpbbHtPXPYb6EHgmqBaDaZ2cK'
const V1 = '1.3.0+gguf-q4_0-any'
const V2 = '1.4.0+gguf-q4_0-any'

function open(clock: { now: number }, init: MessageStoreInit = {}) {
  return new MessageStore({ logger: silentLogger(), now: () => clock.now }, { healthRetentionMs: 24 * HOUR, ...init })
}

/** Puts a message as a verified one (`pad`: extra bytes on the wire, for quota tests). */
function put(store: MessageStore, message: AnyMessage, signer: string, receivedAt?: number, pad = 0) {
  const body = canonicalBytes(message)
  const bytes = new Uint8Array(body.length + pad)
  bytes.set(body)
  const digest = sha256Hex(canonicalBytes({ signer, message }))
  return store.put({ digest, type: message.type, message, signer }, bytes, receivedAt)
}

const report = (device: string, seq: number, end: number) =>
  exampleHealthReport({ device, seq, window: { start: end - MIN, end } })

describe('message retention', () => {
  test('a device keeps its reports within the horizon and its newest two; older ones are dropped and not fetched again', async () => {
    const clock = { now: NOW - 5 * HOUR }
    const store = open(clock)
    // one report a minute for 5 hours, each stored when it was made
    for (let i = 0; i < 300; i++) {
      clock.now = NOW - 5 * HOUR + i * MIN
      assert.equal(await put(store, report(PEER_A, i, clock.now), PEER_A), true)
    }
    clock.now = NOW
    // no release: the horizon is the minimum, 1 h
    assert.equal(store.keeper.reportHorizon(), HOUR)
    const dropped = store.prune()
    const seqs = store.list('HealthReport').map((m) => m.message.seq)
    assert.equal(seqs.length, 60, 'the last hour of reports')
    assert.equal(Math.min(...seqs), 240)
    assert.equal(dropped, 240)
    assert.equal(store.keeper.stats.dropped['report-horizon'], 240)
    // a dropped report is known (anti-entropy does not want it) and is not stored again
    const old = report(PEER_A, 3, NOW - 5 * HOUR + 3 * MIN)
    const id = sha256Hex(canonicalBytes({ signer: PEER_A, message: old }))
    assert.equal(store.known(id), true)
    assert.equal(store.has(id), false)
    assert.equal(await put(store, old, PEER_A, NOW - 5 * HOUR), false)
    // an old report of a device that sent nothing newer is kept (its newest two, whatever the age)
    assert.equal(await put(store, report(PEER_B, 1, NOW - 10 * HOUR), PEER_B, NOW - 10 * HOUR), true)
    assert.equal(await put(store, report(PEER_B, 0, NOW - 11 * HOUR), PEER_B, NOW - 11 * HOUR), true)
    assert.equal(await put(store, report(PEER_B, 2, NOW - 9 * HOUR), PEER_B, NOW - 9 * HOUR), true)
    store.prune()
    assert.deepEqual(
      store
        .list('HealthReport')
        .filter((m) => m.signer === PEER_B)
        .map((m) => m.message.seq)
        .sort(),
      [1, 2],
    )
    // nothing past the retention, even a device's newest
    clock.now = NOW + 25 * HOUR
    store.prune()
    assert.equal(store.list('HealthReport').length, 0)
  })

  test("the horizon is twice the longest stage window of the live releases plus the vote age; a finished release's no longer counts", async () => {
    const clock = { now: NOW }
    const store = open(clock)
    const stages = [{ name: 'all', percent: 100, min_devices: 0, tags: [], window_ms: 2 * HOUR }]
    const policy = examplePolicy({ stages })
    await put(store, exampleRelease({ version: V1, seq: 1, policy }), 'op')
    assert.equal(store.keeper.reportHorizon(), 4 * HOUR + VOTE_MAX_AGE_MS)
    for (let i = 0; i < 5; i++) await put(store, report(PEER_A, i, NOW - (4 - i) * HOUR), PEER_A, NOW)
    store.prune()
    assert.equal(store.list('HealthReport').length, 5, 'a 4 h old report is within a 2 h window release horizon')
    // a later release of the model finishes the first: the horizon falls back to the minimum
    await put(store, exampleRelease({ version: V2, seq: 2, policy: examplePolicy() }), 'op')
    assert.equal(store.keeper.reportHorizon(), HOUR)
    store.prune()
    assert.deepEqual(
      store.list('HealthReport').map((m) => m.message.seq),
      [3, 4],
    )
  })

  test('verdicts and commands of a finished release are compacted to what explains its end; a live release keeps all', async () => {
    const clock = { now: NOW }
    const store = open(clock)
    await put(store, exampleRelease({ version: V1, seq: 1 }), 'op')
    const devices = Array.from({ length: 5 }, (_, i) => `${PEER_A.slice(0, -1)}${'abcde'[i]}`)
    for (const [i, d] of devices.entries()) {
      await put(store, exampleVerdict({ device: d, version: V1, stage: 0, decided_at: NOW - 100 + i }), d)
      await put(
        store,
        exampleVerdict({ device: d, version: V1, stage: 1, outcome: 'abort', decided_at: NOW - 50 + i }),
        d,
      )
    }
    const toggles = ['pause', 'resume', 'pause'] as const
    for (const [i, action] of toggles.entries())
      await put(store, exampleCommand({ version: V1, action, id: `${i}`.repeat(16), issued_at: NOW - 300 + i }), 'op')
    store.prune()
    assert.equal(store.list('Verdict').length, 10, 'a live release keeps every verdict')
    assert.equal(store.list('OperatorCommand').length, 3)
    await put(store, exampleCommand({ version: V1, action: 'abort', id: 'a'.repeat(16), issued_at: NOW - 10 }), 'op')
    store.prune()
    const kept = store.list('Verdict').map((m) => [m.message.stage, m.message.outcome, m.message.device])
    assert.deepEqual(kept.sort(), [
      [0, 'promote', devices[0]],
      [1, 'abort', devices[0]],
    ])
    assert.deepEqual(
      store
        .list('OperatorCommand')
        .map((m) => m.message.action)
        .sort(),
      ['abort', 'pause'],
    )
    assert.equal(store.keeper.stats.dropped['finished-verdict'], 8)
    assert.equal(store.keeper.stats.dropped['finished-command'], 2)
  })

  test('a superseded enrollment is dropped, and one older than the held enrollment is not stored', async () => {
    const clock = { now: NOW }
    const store = open(clock)
    await put(store, exampleEnrollment({ issued_at: NOW - 3000 }), 'op')
    await put(store, exampleEnrollment({ issued_at: NOW - 2000, tags: ['canary'] }), 'op')
    store.prune()
    assert.deepEqual(
      store.list('DeviceEnrollment').map((m) => m.message.tags),
      [['canary']],
    )
    assert.equal(await put(store, exampleEnrollment({ issued_at: NOW - 2500 }), 'op'), false)
    assert.deepEqual(store.enrollmentOf(PEER_A)?.tags, ['canary'])
    // one that expires earlier than the held one does not supersede it
    await put(store, exampleEnrollment({ issued_at: NOW - 1000, expires_at: NOW + 1000 }), 'op')
    store.prune()
    assert.equal(store.list('DeviceEnrollment').length, 2)
  })

  test('a device past its quota of reports or verdicts is refused ERR_QUOTA, counted in /metrics; other devices are not', async () => {
    const clock = { now: NOW }
    const store = open(clock, {
      retention: { reportQuota: { count: 4, bytes: 64 * 1024 }, verdictQuota: { count: 2, bytes: 1 << 20 } },
    })
    for (let i = 0; i < 4; i++) assert.equal(await put(store, report(PEER_A, i, NOW - 4 + i), PEER_A), true)
    await assert.rejects(put(store, report(PEER_A, 9, NOW), PEER_A), (e: StoreQuotaError) => {
      assert.ok(e instanceof StoreQuotaError)
      assert.equal(e.code, 'ERR_QUOTA')
      assert.equal(e.limit, 'count')
      return true
    })
    assert.equal(await put(store, report(PEER_B, 1, NOW), PEER_B), true, 'another signer has its own quota')
    // bytes: one 40 KiB report fits, a second does not
    assert.equal(await put(store, report(PEER_B, 2, NOW), PEER_B, NOW, 40 * 1024), true)
    await assert.rejects(put(store, report(PEER_B, 3, NOW), PEER_B, NOW, 40 * 1024), { code: 'ERR_QUOTA' })
    // verdicts
    for (let s = 0; s < 2; s++) await put(store, exampleVerdict({ stage: s }), PEER_A)
    await assert.rejects(put(store, exampleVerdict({ stage: 2 }), PEER_A), { code: 'ERR_QUOTA' })
    assert.equal(store.list('HealthReport').filter((m) => m.signer === PEER_A).length, 4)
    const text = await createStoreMetrics(store).registry.metrics()
    assert.match(text, /llmesh_store_quota_refusals_total\{type="HealthReport",limit="count"\} 1/)
    assert.match(text, /llmesh_store_quota_refusals_total\{type="HealthReport",limit="bytes"\} 1/)
    assert.match(text, /llmesh_store_quota_refusals_total\{type="Verdict",limit="count"\} 1/)
  })

  test('past its quota, a device first makes room with its own reports the rules drop anyway', async () => {
    const clock = { now: NOW }
    const store = open(clock, { retention: { reportQuota: { count: 4, bytes: 1 << 20 } } })
    for (let i = 0; i < 4; i++) await put(store, report(PEER_A, i, NOW - 3 * HOUR + i), PEER_A, NOW - 3 * HOUR + i)
    // seq 0 and 1 are beyond the horizon and not the newest two: they go, the new one is stored
    assert.equal(await put(store, report(PEER_A, 4, NOW), PEER_A), true)
    assert.deepEqual(
      store.list('HealthReport').map((m) => m.message.seq),
      [2, 3, 4],
    )
    assert.equal(store.keeper.stats.dropped['report-horizon'], 2)
  })

  test('once dropped records outweigh the live ones, the log is compacted while running', async (t) => {
    const dir = await tmpDir(t)
    const clock = { now: NOW - 5 * HOUR }
    const store = open(clock, { dataDir: dir, compactMinDeadBytes: 1 })
    await store.load()
    const r = await reporter()
    for (let i = 0; i < 100; i++) {
      clock.now = NOW - 5 * HOUR + i * 3 * MIN
      const m = await signedReport(r, i, clock.now)
      assert.equal(await store.put(m.verified, m.bytes), true)
    }
    const before = (await stat(join(dir, 'messages.jsonl'))).size
    clock.now = NOW
    store.prune()
    await store.flush()
    const after = (await readFile(join(dir, 'messages.jsonl'), 'utf8')).trim().split('\n')
    assert.equal(after.length, store.size)
    assert.ok((await stat(join(dir, 'messages.jsonl'))).size < before / 3)
    assert.equal(store.health.compactions, 1)
    // appends go on at the new end, and a restart reads the same
    const last = await signedReport(r, 100, NOW)
    assert.equal(await store.put(last.verified, last.bytes), true)
    assert.equal(store.size, 21)
    const again = open(clock, { dataDir: dir })
    await again.load()
    assert.equal(again.size, store.size)
  })

  test('the store stays under the documented bound and follows fleet size, not time, with hostile devices flooding', async () => {
    const clock = { now: NOW }
    const store = open(clock)
    const stages = [{ name: 'all', percent: 100, min_devices: 0, tags: [], window_ms: 30 * MIN }]
    await put(store, exampleRelease({ version: V1, seq: 1, policy: examplePolicy({ stages }) }), 'op')
    const id = (i: number) => `${PEER_A.slice(0, -4)}${String(i).padStart(4, '0')}`
    const honest = Array.from({ length: 60 }, (_, i) => id(i))
    const hostile = Array.from({ length: 3 }, (_, i) => id(1000 + i))
    const sizes: number[] = []
    let refused = 0
    for (let tick = 0; tick < 150; tick++) {
      clock.now = NOW + tick * MIN
      for (const d of honest) assert.equal(await put(store, report(d, tick, clock.now), d), true)
      for (const d of hostile) {
        // maximum-size reports, ten a minute, the first half hour
        for (let k = 0; tick < 30 && k < 10; k++) {
          const big = report(d, tick * 10 + k, clock.now)
          await put(store, big, d, clock.now, MAX_SIZE.HealthReport - canonicalBytes(big).length).catch((e) => {
            assert.equal(e.code, 'ERR_QUOTA')
            refused++
          })
        }
      }
      if (tick % 10 === 9) store.prune()
      if (tick === 89 || tick === 149) sizes.push(store.wireBytes)
    }
    const bound = storeWireBound({ devices: 63, releases: 1, commands: 0, trustRoots: 0 }, store.keeper.quotas)
    assert.ok(store.wireBytes <= bound, `${store.wireBytes} > ${bound}`)
    assert.ok(refused > 0, 'the flood met the quota')
    for (const d of hostile) {
      const held = store.forDevice(d).reduce((n, m) => n + m.bytes.byteLength, 0)
      assert.ok(held <= REPORT_QUOTA_BYTES, `${d} holds ${held}`)
    }
    // an honest device keeps what its live release can still use: twice the window plus the vote age
    const kept = store.forDevice(honest[0]).length
    const horizon = 60 * MIN + VOTE_MAX_AGE_MS
    assert.ok(Math.abs(kept - horizon / MIN) <= 12, `${kept} reports kept (pruned every 10 min)`)
    // one more hour changed the fleet's share by less than the prune interval's worth
    assert.ok(Math.abs(sizes[1] - sizes[0]) / sizes[0] < 0.2, `${sizes[0]} then ${sizes[1]}`)
  })
})
