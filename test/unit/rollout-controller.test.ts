/**
 * The rollout controller's plumbing with the real pure logic (decide, activationFor, gates) and
 * in-memory fakes of the installer, inference supervisor and health reporter: activation,
 * local rollback on a load failure (never retried), fleet abort → previous version, the abort
 * remembered across restarts, verdicts published once; plus the pure helpers (target choice,
 * baseline release, local triggers) and the health window.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { describe, test } from 'node:test'
import { localRollbackTrigger } from '../../node/rollout/local-triggers.ts'
import { chooseTarget, previousRelease } from '../../node/rollout/plan.ts'
import { HealthWindow } from '../../node/telemetry/window.ts'
import { mergeSketches, quantile } from '../../protocols/rollout/sketch.ts'
import type { RolloutPolicy } from '../../protocols/schemas/index.ts'
import { exampleCommand } from '../fixtures/messages.ts'
import { add, ONE_STAGE, release, setup } from './rollout-fakes.ts'

/** A device that served 1.0.0 and now serves 2.0.0, the version under probation. */
async function servingSecond() {
  const s = await setup()
  await s.controller.start()
  add(s.store, release('1.0.0', 1))
  await s.controller.tick()
  add(s.store, release('2.0.0', 2))
  await s.controller.tick()
  await s.controller.tick()
  return s
}

describe('rollout controller plumbing', () => {
  test('activates a one-stage release, rolls back locally on a load failure and never retries it', async () => {
    const s = await setup()
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await s.controller.tick()
    await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.equal(s.supervisor.model?.version, '1.0.0')
    assert.deepEqual(await s.controller.activeVersions(), [{ model: 'tiny', version: '1.0.0' }])
    assert.equal(s.ctx.status.releaseState('tiny', '1.0.0'), 'promoted')

    s.supervisor.broken.add('2.0.0')
    add(s.store, release('2.0.0', 2))
    for (let i = 0; i < 4; i++) await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.equal(s.supervisor.model?.version, '1.0.0')
    assert.equal(s.log.filter((c) => c === 'activate 2.0.0').length, 1)
    assert.deepEqual(s.reporter.events, ['2.0.0 load_failures', '2.0.0 rollbacks'])
    assert.equal(s.controller.counters.localRollbacks, 1)
    await s.controller.stop()
  })

  test('an OOM while serving a new version rolls it back; one during a load does not count as probation', async () => {
    const s = await servingSecond()
    assert.equal(s.supervisor.model?.version, '2.0.0')
    s.supervisor.emit('oom', { at: Date.now(), during: 'load' })
    await s.controller.tick()
    assert.equal(s.installer.active, '2.0.0')
    s.supervisor.emit('oom', { at: Date.now(), during: 'serving' })
    await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.equal(s.supervisor.model?.version, '1.0.0')
    await s.controller.stop()
  })

  test('restarts spread wider than the window never add up to a local rollback', async () => {
    const s = await servingSecond()
    const t = Date.now()
    // 3 restarts now, 3 more six minutes later: never more than 3 within 5 minutes
    for (let i = 0; i < 3; i++) s.supervisor.emit('restart', { at: t + i, count: i + 1, reason: 'crash' })
    for (let i = 0; i < 3; i++) s.supervisor.emit('restart', { at: t + 6 * 60_000 + i, count: i + 4, reason: 'crash' })
    await s.controller.tick()
    assert.equal(s.installer.active, '2.0.0')
    // a fourth within the second burst's window tips it
    s.supervisor.emit('restart', { at: t + 6 * 60_000 + 3, count: 7, reason: 'crash' })
    await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    await s.controller.stop()
  })

  test('more than 3 restarts of a new version within 5 minutes roll it back locally', async () => {
    const s = await servingSecond()
    assert.equal(s.supervisor.model?.version, '2.0.0')
    const t = Date.now()
    for (let i = 0; i < 3; i++) s.supervisor.emit('restart', { at: t + i, count: i + 1, reason: 'crash' })
    await s.controller.tick()
    assert.equal(s.installer.active, '2.0.0')
    s.supervisor.emit('restart', { at: t + 3, count: 4, reason: 'crash' })
    await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.equal(s.supervisor.model?.version, '1.0.0')
    assert.deepEqual(s.reporter.events, ['2.0.0 rollbacks'])
    for (let i = 0; i < 3; i++) await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    await s.controller.stop()
  })

  test('a fleet abort brings the previous version back, and is remembered across restarts', async () => {
    const s = await setup()
    await s.controller.start()
    const r1 = release('1.0.0', 1)
    const r3 = release('3.0.0', 2)
    add(s.store, r1)
    await s.controller.tick()
    add(s.store, r3)
    await s.controller.tick()
    await s.controller.tick()
    assert.equal(s.installer.active, '3.0.0')
    add(
      s.store,
      exampleCommand({ model: 'tiny', version: '3.0.0', action: 'abort', issued_at: Date.now(), id: 'ab'.repeat(8) }),
    )
    await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.equal(s.supervisor.model?.version, '1.0.0')
    assert.ok(s.controller.isAborted('tiny@3.0.0'))
    assert.equal(s.ctx.status.releaseState('tiny', '3.0.0'), 'aborted')
    await s.controller.stop()

    // a restart that lost the abort command still knows: v3 is never activated again by itself
    const again = await setup(s.dir)
    again.installer.staged = new Set(['1.0.0', '3.0.0'])
    await again.controller.start()
    add(again.store, r1)
    add(again.store, r3)
    for (let i = 0; i < 3; i++) await again.controller.tick()
    assert.equal(again.installer.active, '1.0.0')
    assert.ok(!again.log.includes('activate 3.0.0'))
    await again.controller.stop()
  })

  test('before going forward it catches up with peers: an abort learned then stops the activation', async () => {
    let onSync: () => void = () => {}
    const antiEntropy = Object.assign(new EventEmitter(), { sync: async () => onSync() })
    const libp2p = { getConnections: () => [{ remotePeer: { toString: () => 'peer' } }] }
    const s = await setup(undefined, { mesh: { state: 'running', peers: () => ['peer'], antiEntropy, libp2p } })
    await s.controller.start()
    add(s.store, release('1.0.0', 1))
    await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    // the catch-up round brings the abort of 2.0.0 (it happened while this device was away)
    onSync = () =>
      add(
        s.store,
        exampleCommand({ model: 'tiny', version: '2.0.0', action: 'abort', issued_at: Date.now(), id: 'cd'.repeat(8) }),
      )
    add(s.store, release('2.0.0', 2))
    for (let i = 0; i < 3; i++) await s.controller.tick()
    assert.equal(s.installer.active, '1.0.0')
    assert.ok(!s.log.includes('activate 2.0.0'))
    assert.ok(s.controller.isAborted('tiny@2.0.0'))
    // without news from peers it goes ahead
    onSync = () => {}
    add(s.store, release('3.0.0', 3))
    for (let i = 0; i < 3; i++) await s.controller.tick()
    assert.equal(s.installer.active, '3.0.0')
    await s.controller.stop()
  })

  test('an enrolled device publishes a gate verdict once, not on every tick', async () => {
    const s = await setup()
    await s.controller.start()
    const two: RolloutPolicy = {
      ...ONE_STAGE,
      stages: [
        { name: 'canary', percent: 100, min_devices: 0, tags: [], window_ms: 0 },
        { name: 'full', percent: 100, min_devices: 0, tags: [], window_ms: 0 },
      ],
    }
    add(s.store, release('1.0.0', 1, two))
    for (let i = 0; i < 3; i++) await s.controller.tick()
    assert.equal(s.published.length, 1)
    await s.controller.stop()
  })
})

describe('rollout helpers', () => {
  test('chooseTarget: the highest-seq activated release that is not bad', () => {
    const c = [
      { version: '1.0.0', seq: 1, activation: 'activate' as const },
      { version: '2.0.0', seq: 2, activation: 'activate' as const },
      { version: '3.0.0', seq: 3, activation: 'stay' as const },
    ]
    assert.equal(chooseTarget(c, new Set()), '2.0.0')
    assert.equal(chooseTarget(c, new Set(['2.0.0'])), '1.0.0')
    assert.equal(chooseTarget(c, new Set(['1.0.0', '2.0.0'])), null)
  })

  test('previousRelease skips aborted releases', () => {
    const rs = [release('1.0.0', 1), release('2.0.0', 2), release('3.0.0', 3)]
    assert.deepEqual(
      previousRelease(rs, rs[2], () => false),
      { model: 'tiny', version: '2.0.0' },
    )
    assert.deepEqual(
      previousRelease(rs, rs[2], (k) => k === 'tiny@2.0.0'),
      { model: 'tiny', version: '1.0.0' },
    )
    assert.equal(
      previousRelease(rs, rs[0], () => false),
      null,
    )
  })

  test('local triggers: more than 3 restarts in 5 minutes, load/probe failure, OOM', () => {
    const t = 10 * 60_000
    const r = (at: number) => ({ kind: 'restart' as const, at })
    assert.equal(localRollbackTrigger([r(t - 1000), r(t - 2000), r(t - 3000)], t), null)
    assert.equal(localRollbackTrigger([r(t - 1000), r(t - 2000), r(t - 3000), r(t - 4000)], t), 'restart-loop')
    assert.equal(localRollbackTrigger([r(t - 9 * 60_000), r(t - 8 * 60_000), r(t - 1000), r(t - 2000)], t), null)
    assert.equal(localRollbackTrigger([{ kind: 'oom', at: t }], t), 'oom')
    assert.equal(localRollbackTrigger([{ kind: 'load-failure', at: t }], t), 'load-failure')
    assert.equal(localRollbackTrigger([{ kind: 'probe-failure', at: t }], t), 'probe-failure')
  })

  test('health window: per-version counts, a mergeable latency sketch, events; fold starts a new window', () => {
    const w = new HealthWindow(1000)
    const v1 = { model: 'tiny', version: '1.0.0' }
    const all: number[] = []
    for (let i = 1; i <= 100; i++) {
      w.request(v1, { ok: i % 10 !== 0, latencyMs: i * 3, tokensIn: 4, tokensOut: 8 })
      all.push(i * 3)
    }
    w.concurrency(v1, 3)
    w.event(v1, 'restarts')
    const f = w.fold(5000)
    assert.deepEqual([f.start, f.end], [1000, 5000])
    const s = f.inference[0]
    assert.deepEqual([s.requests, s.errors, s.tokens_in, s.tokens_out, s.concurrency_max], [100, 10, 400, 800, 3])
    const p95 = quantile(mergeSketches(s.latency_ms), 0.95)!
    assert.ok(Math.abs(p95 - 285) / 285 <= 0.011, String(p95))
    assert.equal(f.events[0].counts.restarts, 1)
    assert.ok(w.empty)
    assert.equal(w.startedAt, 5000)
  })
})
