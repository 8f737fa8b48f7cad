/**
 * `prestaged` in a release's rollout status: the devices in the release's scope whose latest
 * health report lists the version as staged or active, out of all of them, and who is missing;
 * the operator's signal that the seed may go offline. Plus the health report's `staged` field.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { HealthReport } from '../../protocols/schemas/index.ts'
import { add, healthReport, release, setup, ticks } from './rollout-fakes.ts'

const report = (device: string, seq: number, end: number, staged?: Array<{ model: string; version: string }>) =>
  healthReport(device, seq, { window: { start: end - 1000, end }, ...(staged === undefined ? {} : { staged }) })

describe('prestaged devices of a release', () => {
  test('counts the scope by each device’s latest report; a newer report without it counts as missing', async () => {
    const s = await setup()
    // hold the device out of activation: the fake installer has nothing staged, so it never switches
    add(s.store, release('1.0.0', 1))
    await s.controller.start()
    await ticks(s.controller, 1)
    const pre = () => s.controller.statusJson().releases.find((r) => r.version === '1.0.0')?.prestaged
    assert.deepEqual(pre(), { devices: 0, of: 1, missing: [s.me.peerId] })

    const now = Date.now()
    add(s.store, report(s.me.peerId, 1, now - 5000, [{ model: 'tiny', version: '1.0.0' }]))
    assert.deepEqual(pre(), { devices: 1, of: 1, missing: [] })
    // an older report saying nothing does not undo the newer one…
    add(s.store, report(s.me.peerId, 0, now - 9000, []))
    assert.deepEqual(pre(), { devices: 1, of: 1, missing: [] })
    // …a newer one does (the version was garbage-collected, say)
    add(s.store, report(s.me.peerId, 2, now - 1000, [{ model: 'tiny', version: '0.9.0' }]))
    assert.deepEqual(pre(), { devices: 0, of: 1, missing: [s.me.peerId] })
    // an active version counts as held
    add(s.store, { ...report(s.me.peerId, 3, now, []), active: [{ model: 'tiny', version: '1.0.0' }] })
    assert.deepEqual(pre(), { devices: 1, of: 1, missing: [] })
    await s.controller.stop()
  })

  test('the HealthReport schema takes `staged` and still takes reports without it (older devices)', () => {
    const withIt = report('12D3KooWEh599T2DdNA6jXoJPPEXmzAGbkoAzzG28S3hFr7a5E7m', 1, Date.now(), [
      { model: 'tiny', version: '1.0.0' },
    ])
    assert.deepEqual(HealthReport.parse(withIt).staged, [{ model: 'tiny', version: '1.0.0' }])
    const without = report('12D3KooWEh599T2DdNA6jXoJPPEXmzAGbkoAzzG28S3hFr7a5E7m', 1, Date.now())
    assert.equal(HealthReport.parse(without).staged, undefined)
    assert.throws(() => HealthReport.parse({ ...withIt, staged: [{ model: 'tiny', version: 'not semver' }] }))
  })
})
