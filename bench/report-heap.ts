/**
 * Heap held per stored health report: maximum-size reports (64 KiB on the wire, latency bins up to
 * the limit, as test/lan/flood-reports.ts sends them) verified by the fleet verifier and put into a
 * real MessageStore, against the baseline of the same reports' zod output kept as zod built it
 * (what the store held before the verifier compacted arrays; protocols/encoding.ts compactArrays).
 *
 *   npx node --expose-gc bench/report-heap.ts [--reports 100]
 *
 * Prints a markdown table: heap per report, its ratio to the wire size, and verify time.
 */
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { silentLogger } from '../node/logger.ts'
import { createFleetVerifier } from '../node/mesh/fleet-verifier.ts'
import { MessageStore } from '../node/mesh/message-store.ts'
import { fromBase64 } from '../protocols/encoding.ts'
import { signDeviceMessage } from '../protocols/index.ts'
import { DeviceMessage } from '../protocols/schemas/index.ts'
import { floodReport, maxSizeBins } from '../test/lan/flood-reports.ts'
import { enrollment, makeFleet } from '../test/mesh/fixtures.ts'

const { values } = parseArgs({ options: { reports: { type: 'string', default: '100' } } })
const N = Number(values.reports)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')
const heap = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const fleet = makeFleet()
const store = new MessageStore({ logger: silentLogger() }, { retention: { reportQuota: { count: 1e6, bytes: 1e12 } } })
await store.load()
const verify = createFleetVerifier({ trust: fleet.trust, store })
const key = await generateKeyPair('Ed25519')
const enrolled = await verify(await enrollment(fleet, peerIdFromPrivateKey(key).toString()), Date.now())
if (!enrolled.ok) throw enrolled.error
store.add(enrolled.value, new Uint8Array())
const { bins, wireSize } = await maxSizeBins(fleet.id, key)
const wires: Uint8Array[] = []
for (let i = 1; i <= N; i++) wires.push(await signDeviceMessage(floodReport(fleet.id, key, i, bins, Date.now()), key))

// baseline: the zod output of each payload, as zod built it
const held: unknown[] = []
let h0 = heap()
for (const w of wires) {
  const env = JSON.parse(Buffer.from(w).toString()) as { payload: string }
  held.push(DeviceMessage.parse(JSON.parse(Buffer.from(fromBase64(env.payload)).toString())))
}
const zodKiB = (heap() - h0) / N / 1024
held.length = 0

// the store: verified (compacted) and put
h0 = heap()
let ms = 0
for (const w of wires) {
  const t0 = performance.now()
  const r = await verify(w, Date.now())
  ms += performance.now() - t0
  if (!r.ok) throw r.error
  await store.put(r.value, w)
}
const storeKiB = (heap() - h0) / N / 1024
if (store.syncDigests().length !== N + 1) throw new Error(`stored ${store.syncDigests().length} of ${N + 1}`)

const wireKiB = wireSize / 1024
console.log(`${N} maximum-size health reports, ${bins} latency bins, ${wireSize} bytes on the wire each\n`)
console.log('| kept per report | heap KiB | × wire |')
console.log('|---|---:|---:|')
console.log(`| zod output as built (baseline) | ${zodKiB.toFixed(0)} | ${(zodKiB / wireKiB).toFixed(1)} |`)
console.log(
  `| stored in a MessageStore: verified, compacted (its wire bytes are off the heap) | ${storeKiB.toFixed(0)} | ${(storeKiB / wireKiB).toFixed(1)} |`,
)
console.log(`\nverify: ${(ms / N).toFixed(1)} ms per report`)
