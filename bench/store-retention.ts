/**
 * The message store's size against fleet size × live releases (docs/protocol.md, "Message
 * retention"): simulated devices report into one real MessageStore (with its log on this disk,
 * appends not fsynced) on a simulated clock, a few hostile enrolled devices flood maximum-size
 * reports, the store prunes every 10 simulated minutes. Every report is signed with its device's
 * Ed25519 key, as on the wire.
 *
 *   node bench/store-retention.ts [--devices 1000] [--hours 3] [--interval-s 60] [--window-min 30] [--hostile 5]
 *
 * Prints, per simulated hour: messages held, wire bytes, log bytes, heap, quota refusals; then the
 * documented bound for this fleet.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { silentLogger } from '../node/logger.ts'
import { MessageStore } from '../node/mesh/message-store.ts'
import { storeWireBound } from '../node/mesh/store-retention.ts'
import type { AnyMessage } from '../node/mesh/types.ts'
import { MAX_SIZE } from '../protocols/constants.ts'
import { type HealthReport, signDeviceMessage, wireMessageId } from '../protocols/index.ts'
import { exampleHealthReport, examplePolicy, exampleRelease } from '../test/fixtures/messages.ts'

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    hours: { type: 'string', default: '3' },
    'interval-s': { type: 'string', default: '60' },
    'window-min': { type: 'string', default: '30' },
    hostile: { type: 'string', default: '5' },
    dir: { type: 'string', default: tmpdir() },
  },
})
const DEVICES = Number(values.devices)
const HOURS = Number(values.hours)
const INTERVAL = Number(values['interval-s']) * 1000
const WINDOW = Number(values['window-min']) * 60_000
const HOSTILE = Number(values.hostile)
const MIN = 60_000
const t0 = Date.UTC(2026, 0, 1)

interface Device {
  key: PrivateKey
  id: string
  seq: number
}
const mk = async (): Promise<Device> => {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString(), seq: 0 }
}
const honest = await Promise.all(Array.from({ length: DEVICES }, mk))
const hostile = await Promise.all(Array.from({ length: HOSTILE }, mk))

const dir = await mkdtemp(join(values.dir, 'llmesh-bench-retention-'))
const clock = { now: t0 }
const store = new MessageStore(
  { logger: silentLogger(), now: () => clock.now },
  { dataDir: dir, sync: false, compactMinDeadBytes: 16 * 1024 * 1024 },
)
await store.load()

async function put(d: Device, message: AnyMessage): Promise<'ok' | 'quota'> {
  const bytes = await signDeviceMessage(message as HealthReport, d.key)
  const digest = wireMessageId(bytes) as string
  try {
    await store.put({ digest, type: message.type, message, signer: d.id }, bytes)
    return 'ok'
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_QUOTA') return 'quota'
    throw err
  }
}

const stages = [{ name: 'all', percent: 100, min_devices: 0, tags: [], window_ms: WINDOW }]
const release = exampleRelease({ seq: 1, created_at: t0, policy: examplePolicy({ stages }) })
await store.put(
  { digest: 'f'.repeat(64), type: 'ReleaseManifest', message: release, signer: 'operator' },
  new Uint8Array(8192),
)

const report = (d: Device, end: number, pad = ''): HealthReport =>
  exampleHealthReport({
    device: d.id,
    seq: d.seq++,
    window: { start: end - INTERVAL, end },
    meta: { device_type: 'rpi5', tags: [], runtime_version: `3.21.1${pad}`.slice(0, 64), uptime_s: 1 },
    prompt_hashes: pad === '' ? undefined : Array.from({ length: 64 }, (_, i) => (i % 16).toString(16).repeat(64)),
  })

/** A report padded with sketch bins to just under the HealthReport size limit (bin count found once). */
let binCount = 4096
function bigReport(d: Device, end: number): HealthReport {
  const r = report(d, end, 'x')
  const bins = (n: number): Array<[number, number]> => Array.from({ length: n }, (_, i) => [i, 1 + (i % 7)])
  r.inference[0].latency_ms = { ...r.inference[0].latency_ms, bins: bins(binCount) }
  // the wire envelope carries the payload in base64 (4/3) plus a signature: keep under the limit
  while (Buffer.byteLength(JSON.stringify(r)) * 1.4 > MAX_SIZE.HealthReport) {
    binCount -= 64
    r.inference[0].latency_ms.bins = bins(binCount)
  }
  return r
}

console.log(
  `${DEVICES} devices reporting every ${INTERVAL / 1000} s, ${HOSTILE} hostile devices flooding maximum-size reports, one live release (stage window ${WINDOW / MIN} min), ${HOURS} simulated hours\n`,
)
console.log('| hour | messages | wire MiB | log MiB | heap MiB | quota refusals | puts/s |')
console.log('|---:|---:|---:|---:|---:|---:|---:|')
let refusals = 0
const steps = Math.round((HOURS * 3600_000) / INTERVAL)
let wall = performance.now()
let puts = 0
for (let s = 1; s <= steps; s++) {
  clock.now = t0 + s * INTERVAL
  await Promise.all(honest.map((d) => put(d, report(d, clock.now))))
  puts += honest.length
  for (const d of hostile) {
    // sixteen maximum-size reports per interval (past its quota each is refused)
    const out = await Promise.all(Array.from({ length: 16 }, () => put(d, bigReport(d, clock.now))))
    refusals += out.filter((o) => o === 'quota').length
    puts += out.length
  }
  if ((s * INTERVAL) % (10 * MIN) === 0) store.prune()
  if ((s * INTERVAL) % 3600_000 === 0) {
    await store.flush()
    const log = (await stat(join(dir, 'messages.jsonl'))).size
    const heap = process.memoryUsage().heapUsed
    const rate = puts / ((performance.now() - wall) / 1000)
    console.log(
      `| ${(s * INTERVAL) / 3600_000} | ${store.size} | ${mib(store.wireBytes)} | ${mib(log)} | ${mib(heap)} | ${refusals} | ${rate.toFixed(0)} |`,
    )
    wall = performance.now()
    puts = 0
  }
}
const bound = storeWireBound(
  { devices: DEVICES + HOSTILE, releases: 1, commands: 0, trustRoots: 0 },
  store.keeper.quotas,
)
console.log(
  `\nhorizon ${(store.keeper.reportHorizon() / MIN).toFixed(1)} min; documented wire bound for this fleet: ${mib(bound)} MiB; held ${mib(store.wireBytes)} MiB (${((100 * store.wireBytes) / bound).toFixed(1)} %)`,
)
console.log(
  `compactions while running: ${store.health.compactions}; dropped by rule: ${JSON.stringify(store.keeper.stats.dropped)}`,
)
await store.flush()
await rm(dir, { recursive: true, force: true })
if (store.wireBytes > bound) {
  console.error('the store exceeded its documented bound')
  process.exit(1)
}

function mib(n: number): string {
  return (n / 1024 / 1024).toFixed(1)
}
