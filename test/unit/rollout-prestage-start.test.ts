/**
 * A new release's fetch starts at once: a ReleaseManifest message ticks without the coalescing
 * delay that bursts of other messages wait for, and the prestage is not held behind the write of
 * the rollout facts (on a fresh device the fetch, which opens its store, is the slow part; the
 * fan-out measures from the moment the release is announced).
 */
import assert from 'node:assert/strict'
import { describe, mock, test } from 'node:test'
import { TICK_COALESCE_MS } from '../../node/rollout/constants.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { add, healthReport, release, setup } from './rollout-fakes.ts'

/** Lets the event loop turn up to `turns` times (setImmediate is not mocked) until `cond` holds. */
async function turnsUntil(cond: () => boolean, turns = 200): Promise<boolean> {
  for (let i = 0; i < turns && !cond(); i++) await new Promise((r) => setImmediate(r))
  return cond()
}

/** setup() with the installer's prestage calls recorded. */
async function recorded() {
  const s = await setup()
  const fetched: string[] = []
  const prestage = s.installer.prestage.bind(s.installer)
  s.installer.prestage = async (m: ReleaseManifest) => {
    fetched.push(m.version)
    return prestage(m)
  }
  return { ...s, fetched }
}

describe('a new release starts its fetch at once', () => {
  test('a ReleaseManifest ticks without the coalescing delay; a health report with events waits for it', async (t) => {
    const s = await recorded()
    mock.timers.enable({ apis: ['setTimeout', 'setInterval'] })
    t.after(() => mock.timers.reset())
    await s.controller.start()
    mock.timers.tick(TICK_COALESCE_MS) // start()'s own first tick
    assert.ok(await turnsUntil(() => s.controller.counters.ticks === 1), 'the first tick ran')

    // a report with health events schedules a tick after the coalescing delay, not before it
    add(
      s.store,
      healthReport(s.me.peerId, 1, {
        events: [
          {
            model: 'tiny',
            version: '0.9.0',
            counts: { restarts: 1, ooms: 0, load_failures: 0, probe_failures: 0, rollbacks: 0 },
          },
        ],
      }),
    )
    mock.timers.tick(TICK_COALESCE_MS - 1)
    assert.equal(await turnsUntil(() => s.controller.counters.ticks === 2, 20), false, 'coalesced')
    mock.timers.tick(1)
    assert.ok(await turnsUntil(() => s.controller.counters.ticks === 2), 'the coalesced tick ran')

    // a release is prestaged on a timer of 0 ms
    add(s.store, release('1.0.0', 1))
    assert.deepEqual(s.fetched, [], 'not synchronously, from within the store event')
    mock.timers.tick(0)
    assert.ok(await turnsUntil(() => s.fetched.includes('1.0.0')), 'fetch started with no delay')
    await s.controller.stop()
  })

  test('the fetch starts while the rollout facts are still being written', async () => {
    const s = await recorded()
    await s.controller.start()
    await s.controller.tick()
    let release1: () => void = () => {}
    const gate = new Promise<void>((r) => {
      release1 = r
    })
    const memory = (s.controller as unknown as { memory: { save: () => Promise<void> } }).memory
    const save = memory.save.bind(memory)
    let saving = 0
    memory.save = async () => {
      saving++
      await gate
      return save()
    }
    add(s.store, release('1.0.0', 1))
    const ticked = s.controller.tick()
    assert.ok(await turnsUntil(() => saving > 0), 'the tick is writing its facts')
    assert.ok(await turnsUntil(() => s.fetched.includes('1.0.0')), 'the fetch did not wait for the write')
    release1()
    await ticked
    await s.controller.stop()
  })
})
