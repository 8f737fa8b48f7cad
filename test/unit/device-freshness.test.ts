/**
 * Device messages are bounded in time: a report or verdict dated beyond now + the allowed skew is
 * refused (ERR_FUTURE), and retention judges a stored report by the earlier of its window's end and
 * its arrival, so a report dated a century ahead cannot outlive the retention.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import {
  CLOCK_SKEW_MS,
  checkFreshness,
  signDeviceMessage,
  type VerifyContext,
  verifyEnvelope,
} from '../../protocols/index.ts'
import { deviceKey, exampleHealthReport, exampleOperator, exampleVerdict, NOW } from '../fixtures/messages.ts'

const { root } = exampleOperator()
const ctx: VerifyContext = { trust: root, now: NOW }
const code = (r: ReturnType<typeof verifyEnvelope>): string => (r.ok ? 'OK' : r.error.code)

describe('device messages are bounded in time', () => {
  test('a report whose window ends beyond now + skew is ERR_FUTURE; at the bound it is accepted', async () => {
    const d = await deviceKey()
    const at = async (end: number) =>
      code(
        verifyEnvelope(
          await signDeviceMessage(
            exampleHealthReport({ device: d.peerId, window: { start: end - 60_000, end } }),
            d.key,
          ),
          ctx,
        ),
      )
    assert.equal(await at(NOW + CLOCK_SKEW_MS), 'OK')
    assert.equal(await at(NOW + CLOCK_SKEW_MS + 1), 'ERR_FUTURE')
    assert.equal(await at(NOW + 100 * 365 * 24 * 3600_000), 'ERR_FUTURE')
    // a start after the end does not hide the date either
    const odd = exampleHealthReport({ device: d.peerId, window: { start: NOW + 3_600_000, end: NOW } })
    assert.equal(code(verifyEnvelope(await signDeviceMessage(odd, d.key), ctx)), 'ERR_FUTURE')
  })

  test('a verdict decided or windowed beyond now + skew is ERR_FUTURE', async () => {
    const d = await deviceKey()
    const ok = exampleVerdict({ device: d.peerId })
    assert.equal(code(verifyEnvelope(await signDeviceMessage(ok, d.key), ctx)), 'OK')
    const decided = { ...ok, decided_at: NOW + 2 * CLOCK_SKEW_MS }
    assert.equal(code(verifyEnvelope(await signDeviceMessage(decided, d.key), ctx)), 'ERR_FUTURE')
    const windowed = { ...ok, window: { start: ok.window.start, end: NOW + 2 * CLOCK_SKEW_MS } }
    assert.equal(code(verifyEnvelope(await signDeviceMessage(windowed, d.key), ctx)), 'ERR_FUTURE')
  })

  test('a date beyond what a Date holds is a typed ERR_FUTURE, not a crash', async () => {
    const d = await deviceKey()
    const far = exampleHealthReport({ device: d.peerId, window: { start: NOW, end: Number.MAX_SAFE_INTEGER } })
    const err = checkFreshness(far, NOW)
    assert.equal(err?.code, 'ERR_FUTURE')
  })

  test('retention prunes a stored report by its arrival when its window claims a later end', async () => {
    const d = await deviceKey()
    const day = 24 * 3600_000
    let now = NOW
    const store = new MessageStore({ logger: silentLogger(), now: () => now }, { healthRetentionMs: day })
    const report = exampleHealthReport({ device: d.peerId, window: { start: NOW, end: NOW + 100 * 365 * day } })
    const wire = await signDeviceMessage(report, d.key)
    // as an older node accepted it (no future bound then)
    store.add({ digest: 'f'.repeat(64), type: 'HealthReport', message: report, signer: d.peerId }, wire, NOW)
    assert.equal(store.prune(NOW + day / 2), 0)
    assert.equal(store.syncDigests(NOW + day / 2).length, 1)
    now = NOW + 2 * day
    assert.equal(store.syncDigests(now).length, 0, 'not offered once past the retention')
    assert.equal(store.prune(now), 1, 'dropped once past the retention since its arrival')
    assert.equal(store.size, 0)
  })
})
