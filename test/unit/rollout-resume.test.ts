/**
 * An activation interrupted by a crash, kill -9 or power loss (the `active` link already on the
 * new version, `previous` still kept, nothing served) is finished after the restart as an
 * activation: loaded and probed, then declared healthy (`previous` dropped), or, when it fails,
 * rolled back locally to `previous` and never retried.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { add, release, setup, ticks } from './rollout-fakes.ts'

async function interrupted() {
  const s = await setup()
  // what the installer holds after the kill: v2 switched in, v1 kept as previous
  s.installer.staged = new Set(['1.0.0', '2.0.0'])
  s.installer.active = '2.0.0'
  s.installer.previous = '1.0.0'
  add(s.store, release('1.0.0', 1))
  add(s.store, release('2.0.0', 2))
  return s
}

describe('an interrupted activation is finished after the restart', () => {
  test('loaded, probed and declared healthy: previous dropped', async () => {
    const s = await interrupted()
    await s.controller.start()
    await ticks(s.controller, 3)
    assert.equal(s.supervisor.model?.version, '2.0.0')
    assert.equal(s.installer.active, '2.0.0')
    assert.equal(s.installer.previous, null, 'declared healthy')
    assert.deepEqual(await s.controller.activeVersions(), [{ model: 'tiny', version: '2.0.0' }])
    assert.equal(s.log.filter((l) => l === 'load 2.0.0').length, 1)
    await s.controller.stop()
  })

  test('it fails to load: rolled back locally to previous, never retried', async () => {
    const s = await interrupted()
    s.supervisor.broken.add('2.0.0')
    await s.controller.start()
    await ticks(s.controller, 4)
    assert.equal(s.installer.active, '1.0.0')
    assert.equal(s.supervisor.model?.version, '1.0.0')
    assert.deepEqual(await s.controller.activeVersions(), [{ model: 'tiny', version: '1.0.0' }])
    assert.ok(s.reporter.events.includes('2.0.0 load_failures'), s.reporter.events.join())
    assert.ok(s.reporter.events.includes('2.0.0 rollbacks'), s.reporter.events.join())
    assert.equal(s.log.filter((l) => l === 'load 2.0.0').length, 1)
    assert.equal(s.controller.counters.localRollbacks, 1)
    await s.controller.stop()
  })

  test('a clean restart (no previous) just serves the active version', async () => {
    const s = await setup()
    s.installer.staged = new Set(['1.0.0'])
    s.installer.active = '1.0.0'
    add(s.store, release('1.0.0', 1))
    await s.controller.start()
    await ticks(s.controller, 2)
    assert.equal(s.supervisor.model?.version, '1.0.0')
    assert.equal(s.controller.counters.localRollbacks, 0)
    await s.controller.stop()
  })
})
