/**
 * The fleet history's cost (node/telemetry/fleet-history.ts): `--devices` devices each reporting
 * every `--every` minutes for `--days` days on `--releases` versions, folded into one FleetHistory.
 * Prints the fold rate, the history's own byte count, the heap it adds, the size and time of a save
 * and of a load, against the baseline of keeping the same reports as JSON (what a naive history of
 * "every report" would hold).
 *
 * Usage: node bench/history.ts [--devices 1000] [--days 7] [--every 15] [--releases 2]
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { HISTORY_FILE } from '../node/telemetry/constants.ts'
import { FleetHistory } from '../node/telemetry/fleet-history.ts'
import { addValue, newSketch } from '../protocols/rollout/sketch.ts'
import type { HealthReport } from '../protocols/schemas/index.ts'

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    days: { type: 'string', default: '7' },
    every: { type: 'string', default: '15' },
    releases: { type: 'string', default: '2' },
  },
})
const DEVICES = Number(values.devices)
const DAYS = Number(values.days)
const EVERY = Number(values.every) * 60_000
const RELEASES = Number(values.releases)
const END = Date.UTC(2026, 11, 1)
const START = END - DAYS * 24 * 3600_000

const store = { on() {}, off() {}, list: () => [] }
const logger = pino({ level: 'silent' })
const dir = await mkdtemp(join(tmpdir(), 'llmesh-bench-history-'))
let now = START
const h = new FleetHistory({ store, logger, now: () => now }, { dataDir: dir, maxDevices: DEVICES })
await h.start()

function report(device: number, end: number): HealthReport {
  const version = `1.${device % RELEASES}.0`
  let s = newSketch()
  for (let i = 0; i < 20; i++) s = addValue(s, 20 + ((device * 7 + i * 13) % 300))
  return {
    type: 'HealthReport',
    v: 1,
    fleet: 'bench',
    device: `12D3KooWdevice${String(device).padStart(6, '0')}`,
    seq: end,
    window: { start: end - EVERY, end },
    meta: { device_type: 'pi5', tags: ['wide'], runtime_version: '1', uptime_s: 100 },
    active: [{ model: 'tiny', version }],
    hardware: { cpu_pct: device % 100, ram_pct: 40, ram_total_mb: 4096, temp_c: 55 },
    inference: [
      {
        model: 'tiny',
        version,
        requests: 20,
        errors: 0,
        tokens_in: 500,
        tokens_out: 900,
        concurrency_max: 2,
        latency_ms: s,
      },
    ],
    events: [],
  } as unknown as HealthReport
}

global.gc?.()
const heap0 = process.memoryUsage().heapUsed
let reports = 0
let jsonBytes = 0
let foldMs = 0
for (let t = START + EVERY; t <= END; t += EVERY) {
  now = t
  for (let d = 0; d < DEVICES; d++) {
    const r = report(d, t)
    if (reports % 97 === 0) jsonBytes += JSON.stringify(r).length * 97 // sampled: stringifying all costs more than folding
    const f0 = performance.now()
    h.fold(r, t)
    foldMs += performance.now() - f0
    reports++
  }
}
global.gc?.()
const heap1 = process.memoryUsage().heapUsed
const ts = performance.now()
await h.save()
const saveMs = performance.now() - ts
const fileBytes = (await stat(join(dir, HISTORY_FILE))).size
const again = new FleetHistory({ store, logger, now: () => now }, { dataDir: dir, maxDevices: DEVICES })
const tl = performance.now()
await again.start()
const loadMs = performance.now() - tl
const p = again.release('tiny', '1.0.0', END - 3600_000, END)
await again.stop()
await h.stop()
await rm(dir, { recursive: true, force: true })

const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`
console.log(`devices ${DEVICES}, ${DAYS} days, a report every ${EVERY / 60_000} min, ${RELEASES} releases`)
console.log(
  `reports folded: ${reports}, folding alone ${(foldMs / 1000).toFixed(1)} s = ${Math.round(reports / (foldMs / 1000))}/s`,
)
console.log(
  `history bytes (its own count): ${mb(h.summary().bytes)}; heap added: ${mb(heap1 - heap0)}${global.gc ? '' : ' (run with --expose-gc for an exact figure)'}`,
)
console.log(`history.json: ${mb(fileBytes)}, save ${saveMs.toFixed(0)} ms, load ${loadMs.toFixed(0)} ms`)
console.log(
  `baseline, the same reports kept as JSON: ${mb(jsonBytes)} (${(jsonBytes / Math.max(1, h.summary().bytes)).toFixed(0)}× the history)`,
)
console.log(
  `last hour of tiny@1.0.0 after reload: ${p?.points.length ?? 0} points, p95 ${p?.points.at(-1)?.p95_ms ?? '–'} ms`,
)
