/**
 * What a stored health report costs in heap (issue #11): the verifier compacts the arrays of what
 * it returns (protocols/encoding.ts compactArrays), so a maximum-size report (64 KiB on the wire,
 * 5,573 latency bins) held by a real MessageStore costs ~4–6× its wire size, not the ~16× of zod's
 * output as built. The bound per hostile device in docs/protocol.md rests on this.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { compactArrays } from '../../protocols/encoding.ts'
import { signDeviceMessage } from '../../protocols/index.ts'
import { floodReport, maxSizeBins } from '../lan/flood-reports.ts'
import { enrollment, makeFleet } from '../mesh/fixtures.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heap = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

test('compactArrays keeps every value and replaces each array by a copy', () => {
  const v = { a: [[1, 2], [3]], b: { c: ['x'] }, d: 1, e: null }
  const before = v.a
  const out = compactArrays(v)
  assert.equal(out, v, 'objects are kept')
  assert.notEqual(out.a, before, 'arrays are copies')
  assert.deepEqual(out, { a: [[1, 2], [3]], b: { c: ['x'] }, d: 1, e: null })
})

test('a stored maximum-size health report holds under 8× its wire size in heap', async () => {
  const fleet = makeFleet()
  const store = new MessageStore(
    { logger: silentLogger() },
    { retention: { reportQuota: { count: 1e6, bytes: 1e12 } } },
  )
  await store.load()
  const verify = createFleetVerifier({ trust: fleet.trust, store })
  const key = await generateKeyPair('Ed25519')
  const enrolled = await verify(await enrollment(fleet, peerIdFromPrivateKey(key).toString()), Date.now())
  assert.ok(enrolled.ok)
  store.add(enrolled.value, new Uint8Array())
  const { bins, wireSize } = await maxSizeBins(fleet.id, key)
  const N = 20
  const wires: Uint8Array[] = []
  for (let i = 1; i <= N; i++) wires.push(await signDeviceMessage(floodReport(fleet.id, key, i, bins, Date.now()), key))
  const h0 = heap()
  for (const w of wires) {
    const r = await verify(w, Date.now())
    assert.ok(r.ok, r.ok ? '' : r.error.message)
    assert.equal(await store.put(r.value, w), true)
  }
  const perReport = (heap() - h0) / N
  assert.equal(store.syncDigests().length, N + 1)
  // uncompacted it is ~16.5×; compacted 4–6×
  assert.ok(
    perReport < 8 * wireSize,
    `${Math.round(perReport / 1024)} KiB per ${Math.round(wireSize / 1024)} KiB report`,
  )
})
