/**
 * Failure budgets with real daemons on loopback (seed + 3 devices, real inference workers): one
 * device's worker is crash-looped (4 × SIGKILL from outside: crashes, not OOMs), so that device
 * rolls the version back by itself. With `failures: { max_devices: 1 }` the fleet goes on and
 * promotes, and every node's rollout status lists the failed device with its reasons; with
 * `max_devices: 0` the same failure aborts the release on every node.
 */

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { POLICIES, scaled } from '../helpers/index.ts'
import {
  activeOf,
  type FleetDevice,
  publish,
  type RolloutFleet,
  rolloutOf,
  servedOf,
  startRolloutFleet,
  waitAllServing,
  waitFor,
} from './rollout-helpers.ts'

const budget = (maxDevices: number, window: string) => `
stages:
  - { name: wide, percent: 100, window: ${window} }
  - { name: full, percent: 100 }
gates:
  restarts: { max: 3, per: 5m }
  min_reports: 2
  failures: { max_devices: ${maxDevices} }
`

/** Kills the device's worker from outside until it rolled `version` back (4 crashes in a row). */
async function crashLoop(d: FleetDevice, version: string): Promise<void> {
  const sup = d.parts.supervisor!
  const kinds: string[] = []
  const onExit = (e: { kind: string }) => kinds.push(e.kind)
  sup.on('worker-exit', onExit)
  try {
    for (let i = 0; i < 4; i++) {
      await waitFor(() => servedOf(d) === version || i >= 4, 60_000, `${version} serving before crash ${i + 1}`)
      process.kill(sup.status().workerPid!, 'SIGKILL')
      await waitFor(() => kinds.length > i, 30_000, `exit ${i + 1}`)
    }
  } finally {
    sup.off('worker-exit', onExit)
  }
  assert.deepEqual(kinds, ['crash', 'crash', 'crash', 'crash'])
  await waitFor(async () => (await activeOf(d)) !== version, 60_000, `${version} rolled back on ${d.name}`)
}

describe('failure budgets across a real fleet', { timeout: scaled(400_000) }, () => {
  let f: RolloutFleet
  before(async () => {
    f = await startRolloutFleet([[], [], []])
    await publish(f, '1.0.0', POLICIES.ONE_STAGE)
    await waitAllServing(f, '1.0.0', 90_000)
  })
  after(async () => {
    await f?.stop()
  })
  const nodes = () => [f.seedParts, ...f.devices.map((d) => d.parts)]

  test('max_devices: 1 — one device fails and rolls back, the others go on and the release promotes', async () => {
    await publish(f, '2.0.0', budget(1, '60s'), { perturbLayer: 1 })
    await waitAllServing(f, '2.0.0', 90_000)
    const d0 = f.devices[0]
    await crashLoop(d0, '2.0.0')
    assert.equal(await activeOf(d0), '1.0.0')
    // every node lists the failed device with its reasons, within the budget
    // both of its failing reports (the restarts and the rollback) may arrive in either order
    const complete = (p: ReturnType<typeof nodes>[number]) =>
      rolloutOf(p, '2.0.0')?.failures?.failed.find((x) => x.device === d0.id)?.reasons.length === 2
    await waitFor(
      () => nodes().every(complete),
      60_000,
      'the failed device, with both of its reasons, in every node’s rollout status',
      () => nodes().map((p) => rolloutOf(p, '2.0.0')?.failures?.failed),
    )
    const failures = rolloutOf(f.seedParts, '2.0.0')!.failures!
    assert.equal(failures.budget, 1)
    assert.equal(failures.cohort, 3)
    assert.deepEqual(failures.failed.find((x) => x.device === d0.id)?.reasons, [
      '4 restarts within 300000 ms (max 3)',
      'local rollback',
    ])
    await waitFor(
      () => nodes().every((p) => rolloutOf(p, '2.0.0')?.phase === 'promoted'),
      120_000,
      'v2 promoted on every node',
    )
    for (const d of f.devices.slice(1)) assert.equal(await activeOf(d), '2.0.0')
    assert.equal(await activeOf(d0), '1.0.0', 'a version that failed on a device stays rolled back there')
  })

  test('max_devices: 0 — the same failure aborts the release on every node', async () => {
    await publish(f, '3.0.0', budget(0, '10m'), { perturbLayer: 2 })
    await waitAllServing(f, '3.0.0', 90_000)
    await crashLoop(f.devices[1], '3.0.0')
    await waitFor(
      () => nodes().every((p) => rolloutOf(p, '3.0.0')?.phase === 'aborted'),
      60_000,
      'v3 aborted on every node',
    )
    const failures = rolloutOf(f.seedParts, '3.0.0')?.failures
    assert.deepEqual(
      failures?.failed.map((x) => x.device),
      [f.devices[1].id],
    )
    assert.equal(failures?.budget, 0)
    await waitFor(
      async () => (await Promise.all(f.devices.slice(1).map(activeOf))).every((v) => v === '2.0.0'),
      60_000,
      'back on v2',
    )
  })
})
