/**
 * The fleet history on real daemons (seed + 1 device on loopback, the real composition): chat
 * completions served by the device show up, through its signed health reports, in the seed's
 * GET /history/releases/tiny/<v> (requests, the serving device, a p95 from the merged sketches)
 * and in the device history (CPU, RAM); unknown series and bad ranges answer in the one error
 * contract.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import type { DevicePoint, HistoryRange, ReleasePoint } from '../../node/telemetry/fleet-history.ts'
import { POLICIES, scaled } from '../helpers/index.ts'
import { publish, type RolloutFleet, startRolloutFleet, waitAllServing, waitFor } from './rollout-helpers.ts'

const ONE_STAGE = POLICIES.ONE_STAGE_EXCEPT('seed')

async function get<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url)
  return { status: res.status, body: (await res.json()) as T }
}

describe('fleet history of real daemons', { timeout: scaled(120_000) }, () => {
  let f: RolloutFleet | undefined
  after(async () => {
    await f?.stop()
  })

  test('requests served by a device reach the seed history with a fleet p95', async () => {
    f = await startRolloutFleet([[]])
    const dev = f.devices[0]
    await publish(f, '1.0.0', ONE_STAGE)
    await waitAllServing(f, '1.0.0')
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${dev.daemon.apiUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: `hello ${i}` }], max_tokens: 4 }),
      })
      assert.equal(res.status, 200)
    }
    const seedApi = f.seed.apiUrl!
    let points: ReleasePoint[] = []
    await waitFor(
      async () => {
        const r = await get<HistoryRange<ReleasePoint>>(`${seedApi}/history/releases/tiny/1.0.0`)
        points = r.status === 200 ? r.body.points : []
        return points.reduce((a, p) => a + p.requests, 0) >= 3
      },
      scaled(30_000),
      'the seed history counts the 3 requests',
    )
    assert.ok(points.some((p) => p.devices === 1))
    assert.ok(points.some((p) => p.p95_ms !== null && p.p95_ms > 0))
    assert.ok(points.every((p) => p.errors === 0))
    const summary = await get<{ releases: string[]; devices: string[]; bytes: number }>(`${seedApi}/history`)
    assert.ok(summary.body.releases.includes('tiny@1.0.0'))
    assert.ok(summary.body.devices.includes(dev.id))
    assert.ok(summary.body.bytes > 0)
    const d = await get<HistoryRange<DevicePoint>>(`${seedApi}/history/devices/${dev.id}`)
    assert.equal(d.status, 200)
    assert.ok(d.body.points.length > 0)
    assert.ok(d.body.points.every((p) => p.cpu_pct !== null && p.ram_pct !== null))

    const missing = await get<{ error: { code: string } }>(`${seedApi}/history/releases/tiny/9.9.9`)
    assert.equal(missing.status, 404)
    assert.equal(missing.body.error.code, 'ERR_NOT_FOUND')
    const bad = await get<{ error: { code: string } }>(`${seedApi}/history/fleet?from=yesterday`)
    assert.equal(bad.status, 400)
    assert.equal(bad.body.error.code, 'ERR_INVALID_INPUT')
    const reversed = await get<{ error: { code: string } }>(`${seedApi}/history/fleet?from=2000&to=1000`)
    assert.equal(reversed.status, 400)
  })
})
