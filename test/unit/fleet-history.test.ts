/**
 * The fleet history (node/telemetry/fleet-history.ts, history-ring.ts): buckets, horizons, fixed
 * memory, fleet p95 from merged sketches, devices counted once per bucket, means, offline share,
 * eviction past the bounds, and a restart that keeps the history (saved file + reports after the
 * save folded again from the store), with a corrupt save set aside.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { pino } from 'pino'
import type { StoredMessage } from '../../node/mesh/types.ts'
import { HISTORY_FILE, HISTORY_RELEASE_COARSE, HISTORY_RELEASE_FINE } from '../../node/telemetry/constants.ts'
import { FleetHistory } from '../../node/telemetry/fleet-history.ts'
import { HistoryRing } from '../../node/telemetry/history-ring.ts'
import { addValue, mergeSketches, newSketch, quantile } from '../../protocols/rollout/sketch.ts'
import type { HealthReport } from '../../protocols/schemas/index.ts'
import { tmpDir } from '../helpers/index.ts'

const MIN = 60_000
const silentLogger = pino({ level: 'silent' })
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0)

/** The store as the history sees it: `message` events and `list`. */
class FakeStore extends EventEmitter {
  readonly held: StoredMessage[] = []
  add(h: HealthReport, receivedAt: number): void {
    const m = { type: 'HealthReport', message: h, receivedAt } as unknown as StoredMessage
    this.held.push(m)
    this.emit('message', m)
  }
  list(): StoredMessage[] {
    return this.held
  }
}

function latency(values: number[]) {
  let s = newSketch()
  for (const v of values) s = addValue(s, v)
  return s
}

function report(
  device: string,
  end: number,
  o: { version?: string; requests?: number; errors?: number; ms?: number[]; cpu?: number; temp?: number } = {},
): HealthReport {
  const version = o.version ?? '1.0.0'
  return {
    type: 'HealthReport',
    v: 1,
    fleet: 'f',
    device,
    seq: end,
    window: { start: end - MIN, end },
    meta: { device_type: 'pi5', tags: [], runtime_version: '1', uptime_s: 10 },
    active: [{ model: 'tiny', version }],
    hardware: {
      cpu_pct: o.cpu ?? 10,
      ram_pct: 50,
      ram_total_mb: 4096,
      ...(o.temp === undefined ? {} : { temp_c: o.temp }),
    },
    inference: [
      {
        model: 'tiny',
        version,
        requests: o.requests ?? 0,
        errors: o.errors ?? 0,
        tokens_in: 5,
        tokens_out: 7,
        concurrency_max: 1,
        latency_ms: latency(o.ms ?? []),
      },
    ],
    events: [],
  } as unknown as HealthReport
}

async function history(t: Parameters<typeof tmpDir>[0], clock: { now: number }, store = new FakeStore(), dir?: string) {
  const dataDir = dir ?? (await tmpDir(t, 'llmesh-history-'))
  const h = new FleetHistory({ store, logger: silentLogger, now: () => clock.now }, { dataDir, maxDevices: 3 })
  await h.start()
  return { h, store, dataDir }
}

describe('HistoryRing', () => {
  test('sums and maxes per bucket, reuses slots, drops what is past the horizon', () => {
    const r = new HistoryRing({ n: 'sum', peak: 'max' } as const, MIN, 4)
    const now = T0 + 10 * MIN
    assert.equal(r.add(now - 30_000, { n: 2, peak: 5 }, now), Math.floor((now - 30_000) / MIN) * MIN)
    r.add(now - 20_000, { n: 3, peak: 4 }, now)
    assert.equal(r.add(now - 10 * MIN, { n: 1 }, now), undefined, 'older than 4 buckets: dropped')
    r.add(now - 2 * MIN, { n: 7 }, now)
    const pts = r.range(0, now)
    assert.deepEqual(
      pts.map((p) => [p.n, p.peak]),
      [
        [7, 0],
        [5, 5],
      ],
    )
    // 4 buckets later the slot of the first value is reused and starts from zero
    const later = now + 4 * MIN
    r.add(later, { n: 1 }, later)
    assert.deepEqual(
      r.range(0, later).map((p) => p.n),
      [1],
    )
  })

  test('property: memory is fixed, no bucket outside the horizon, a save loads back identical', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: -20 * MIN, max: 2 * MIN }), fc.integer({ min: 0, max: 1000 })), {
          maxLength: 200,
        }),
        (adds) => {
          const r = new HistoryRing({ n: 'sum' } as const, MIN, 8)
          const bytes = r.bytes
          const now = T0
          for (const [dt, n] of adds) r.add(now + dt, { n }, now)
          assert.equal(r.bytes, bytes)
          const pts = r.range(0, Number.MAX_SAFE_INTEGER)
          assert.ok(pts.length <= 8)
          const newest = Math.max(Math.floor(now / MIN), ...pts.map((p) => p.t / MIN))
          for (const p of pts) assert.ok(p.t / MIN > newest - 8)
          const copy = new HistoryRing({ n: 'sum' } as const, MIN, 8)
          assert.ok(copy.load(JSON.parse(JSON.stringify(r.toJSON()))))
          assert.deepEqual(copy.range(0, Number.MAX_SAFE_INTEGER), pts)
        },
      ),
      { numRuns: 300 },
    )
  })

  test('a save of another shape or with garbage bucket numbers is refused', () => {
    const r = new HistoryRing({ n: 'sum' } as const, MIN, 4)
    r.add(T0, { n: 1 }, T0)
    const json = r.toJSON()
    assert.equal(new HistoryRing({ n: 'sum' } as const, MIN, 5).load(json), false)
    const bad = { ...json, buckets: Buffer.from(new Float64Array([1.5, -1, -1, -1]).buffer).toString('base64') }
    assert.equal(new HistoryRing({ n: 'sum' } as const, MIN, 4).load(bad), false)
    assert.equal(new HistoryRing({ n: 'sum' } as const, MIN, 4).load(null as never), false)
  })
})

describe('FleetHistory', () => {
  test('fleet p95 from merged sketches, error rate, devices counted once per bucket', async (t) => {
    const clock = { now: T0 }
    const { h, store } = await history(t, clock)
    const a = [10, 12, 15, 400]
    const b = [20, 22, 25, 30, 500]
    store.add(report('A', T0 - 30_000, { requests: 4, errors: 1, ms: a }), T0)
    store.add(report('B', T0 - 20_000, { requests: 5, ms: b }), T0)
    store.add(report('A', T0 - 10_000, { requests: 0 }), T0) // A again, same bucket
    const r = h.release('tiny', '1.0.0', T0 - 10 * MIN, T0)
    assert.ok(r !== undefined)
    assert.equal(r.step_ms, HISTORY_RELEASE_FINE.stepMs)
    assert.equal(r.points.length, 1)
    const p = r.points[0]
    assert.equal(p.requests, 9)
    assert.equal(p.errors, 1)
    assert.equal(p.error_rate, 0.11)
    assert.equal(p.devices, 2, 'A reported twice in the bucket and counts once')
    const merged = quantile(mergeSketches(latency(a), latency(b)), 0.95)!
    assert.equal(p.p95_ms, Math.round(merged * 100) / 100)
    await h.stop()
  })

  test('ranges beyond the fine horizon come in coarse buckets; a device shows means', async (t) => {
    const clock = { now: T0 }
    const { h, store } = await history(t, clock)
    store.add(report('A', T0 - 2 * 24 * 60 * MIN, { requests: 3, cpu: 20, temp: 50 }), T0)
    store.add(report('A', T0 - 2 * 24 * 60 * MIN + MIN, { requests: 1, cpu: 40, temp: 60 }), T0)
    store.add(report('A', T0 - 8 * 24 * 60 * MIN, { requests: 99 }), T0) // past 7 days: dropped
    const r = h.release('tiny', '1.0.0', T0 - 7 * 24 * 60 * MIN, T0)!
    assert.equal(r.step_ms, HISTORY_RELEASE_COARSE.stepMs)
    assert.deepEqual(
      r.points.map((p) => p.requests),
      [4],
    )
    const d = h.device('A', T0 - 7 * 24 * 60 * MIN, T0)!
    assert.equal(d.points.length, 1)
    assert.equal(d.points[0].cpu_pct, 30)
    assert.equal(d.points[0].temp_c, 55)
    assert.equal(h.device('nobody', 0, T0), undefined)
    await h.stop()
  })

  test('offline share per bucket, and the device bound drops the least recently reporting', async (t) => {
    const clock = { now: T0 }
    const { h, store } = await history(t, clock)
    const hourAgo = T0 - 60 * MIN
    for (const d of ['A', 'B', 'C']) store.add(report(d, hourAgo), T0)
    store.add(report('A', T0), T0)
    const f = h.fleet(T0 - 3 * 60 * MIN, T0)
    assert.deepEqual(
      f.points.map((p) => [p.known, p.reporting, p.offline_ratio]),
      [
        [3, 3, 0],
        [3, 1, 0.67],
      ],
    )
    clock.now = T0 + 1
    store.add(report('D', T0), T0 + 1) // maxDevices 3: the least recently updated (B) goes
    assert.deepEqual(h.summary().devices, ['A', 'C', 'D'])
    await h.stop()
  })

  test('a restart keeps the history: the saved file plus reports after it, from the store', async (t) => {
    const clock = { now: T0 }
    const first = await history(t, clock)
    first.store.add(report('A', T0 - 5 * MIN, { requests: 2 }), T0 - 5 * MIN)
    await first.h.stop()
    assert.ok((await readdir(first.dataDir)).includes(HISTORY_FILE))
    // a report arrives while the node is down; the store holds it at the next start
    first.store.held.push({
      type: 'HealthReport',
      message: report('B', T0 - MIN, { requests: 3 }),
      receivedAt: T0 - MIN,
    } as unknown as StoredMessage)
    const second = await history(t, clock, first.store, first.dataDir)
    const pts = second.h.release('tiny', '1.0.0', T0 - 10 * MIN, T0)!.points
    assert.deepEqual(
      pts.map((p) => p.requests),
      [2, 3],
    )
    await second.h.stop()
  })

  test('an unusable save is set aside and the node starts from the store', async (t) => {
    const clock = { now: T0 }
    const dataDir = await tmpDir(t, 'llmesh-history-')
    await writeFile(join(dataDir, HISTORY_FILE), '{"through": 1, "releases": [tor')
    const store = new FakeStore()
    store.held.push({ type: 'HealthReport', message: report('A', T0, { requests: 1 }), receivedAt: T0 } as never)
    const { h } = await history(t, clock, store, dataDir)
    assert.ok((await readdir(dataDir)).includes(`${HISTORY_FILE}.bad`))
    assert.equal(h.release('tiny', '1.0.0', T0 - MIN, T0)!.points[0].requests, 1)
    await h.stop()
  })
})
