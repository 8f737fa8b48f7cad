/**
 * Deactivation by the rollout controller (real pure logic, in-memory installer/supervisor/reporter):
 * a model's first release aborted by the operator, or failing to load with nothing to go back to,
 * leaves the device with no active version and nothing served (supervisor stopped first, then
 * the `active` link), the reason in /status, health reports claiming nothing; it is never
 * reactivated by itself, the state survives a restart, and a later good release activates.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { abort, add, release, setup, ticks } from './rollout-fakes.ts'

describe('deactivation when there is nothing to go back to', () => {
  test('a first release aborted by the operator: worker stopped, then active removed; v2 later activates', async () => {
    const s = await setup()
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await ticks(s.controller, 2)
    assert.equal(s.installer.active, '1.0.0')
    assert.deepEqual(await s.controller.activeVersions(), [{ model: 'tiny', version: '1.0.0' }])

    add(s.store, abort('1.0.0', 'a'))
    await ticks(s.controller, 1)
    assert.equal(s.installer.active, null)
    const served = (): unknown => s.supervisor.model
    assert.equal(served(), undefined)
    assert.equal(s.supervisor.deactivation?.reason, 'release aborted')
    // the worker let go of the file before the link went away
    assert.deepEqual(s.log.slice(-2), ['stop worker 1.0.0', 'unlink 1.0.0'])
    assert.deepEqual(await s.controller.activeVersions(), [])
    assert.ok(s.reporter.events.includes('1.0.0 rollbacks'))
    assert.equal(s.controller.counters.deactivations, 1)
    const models = await s.status.models()
    assert.equal(models.tiny.active, null)
    assert.equal(models.tiny.deactivated?.version, '1.0.0')
    assert.equal(models.tiny.deactivated?.reason, 'release aborted')
    assert.equal(s.controller.statusJson().deactivated.tiny?.reason, 'release aborted')

    // never reactivated by itself
    const before = s.log.length
    await ticks(s.controller, 3)
    assert.deepEqual(s.log.slice(before), [])
    assert.equal(s.installer.active, null)

    // a later good release activates normally and clears the note
    add(s.store, release('2.0.0', 2))
    await ticks(s.controller, 2)
    assert.equal(s.installer.active, '2.0.0')
    assert.equal(s.supervisor.model?.version, '2.0.0')
    assert.deepEqual(await s.controller.activeVersions(), [{ model: 'tiny', version: '2.0.0' }])
    assert.equal((await s.status.models()).tiny.deactivated, undefined)
    assert.deepEqual(s.controller.statusJson().deactivated, {})
    await s.controller.stop()
  })

  test('a first release that fails to load: local rollback to nothing, never retried', async () => {
    const s = await setup()
    s.supervisor.broken.add('1.0.0')
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await ticks(s.controller, 4)
    assert.equal(s.installer.active, null)
    assert.equal(s.supervisor.deactivation?.reason, 'local rollback: load-failure')
    assert.equal(s.log.filter((l) => l === 'load 1.0.0').length, 1)
    assert.deepEqual(s.reporter.events, ['1.0.0 load_failures', '1.0.0 rollbacks'])
    assert.deepEqual(await s.controller.activeVersions(), [])
    assert.equal((await s.status.models()).tiny.deactivated?.reason, 'local rollback: load-failure')
    assert.equal(s.controller.counters.localRollbacks, 1)
    await s.controller.stop()
  })

  test('a bad active version whose previous is bad too is deactivated, not rolled back onto', async () => {
    const s = await setup()
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await ticks(s.controller, 2)
    add(s.store, release('2.0.0', 2))
    await ticks(s.controller, 2)
    assert.equal(s.installer.active, '2.0.0')
    s.installer.previous = '1.0.0' // still kept (not yet declared healthy, say)
    add(s.store, abort('1.0.0', 'b'))
    add(s.store, abort('2.0.0', 'c'))
    await ticks(s.controller, 2)
    assert.equal(s.installer.active, null)
    assert.ok(!s.log.includes('rollback 1.0.0'))
    assert.equal(s.supervisor.deactivation?.version, '2.0.0')
    await s.controller.stop()
  })

  test('the deactivation survives a restart: nothing activated, the supervisor told why', async () => {
    const s = await setup()
    await s.controller.start()
    const r1 = release('1.0.0', 1)
    add(s.store, r1)
    await ticks(s.controller, 2)
    add(s.store, abort('1.0.0', 'd'))
    await ticks(s.controller, 1)
    assert.equal(s.installer.active, null)
    await s.controller.stop()

    const again = await setup(s.dir)
    again.installer.staged = new Set(['1.0.0'])
    await again.controller.start()
    add(again.store, r1) // the abort command itself was lost
    await ticks(again.controller, 3)
    assert.equal(again.installer.active, null)
    assert.ok(!again.log.includes('activate 1.0.0'))
    assert.equal(again.supervisor.deactivation?.reason, 'release aborted')
    assert.equal((await again.status.models()).tiny.deactivated?.reason, 'release aborted')
    await again.controller.stop()
  })
})
