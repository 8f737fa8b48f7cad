/**
 * Worker faults through a real daemon on loopback (seed + 1 device, the real composition): the
 * worker of a new version crashing 4 times within minutes (SIGSEGV from outside) is detected as
 * crashes, counted as restarts of THAT version in /metrics and in the signed HealthReports the
 * seed stores, and the device rolls back to `previous` by itself (restart-loop trigger).
 */

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { HealthReport } from '../../protocols/index.ts'
import { scaled } from '../helpers/index.ts'
import {
  activeOf,
  type FleetDevice,
  publish,
  type RolloutFleet,
  servedOf,
  startRolloutFleet,
  waitAllServing,
  waitFor,
} from './rollout-helpers.ts'

const ONE_STAGE = `
stages:
  - { name: full, percent: 100, window: 1s }
gates:
  min_reports: 0
`

describe('inference worker faults through a daemon', { timeout: scaled(120_000) }, () => {
  let f: RolloutFleet
  let d: FleetDevice
  before(async () => {
    f = await startRolloutFleet([[]])
    d = f.devices[0]
    await publish(f, '1.0.0', ONE_STAGE)
    await waitAllServing(f, '1.0.0')
  })
  after(async () => {
    await f?.stop()
  })

  const reports = () =>
    f.seed.context.store
      .list('HealthReport')
      .filter((r) => r.message.device === d.id && r.signer === d.id)
      .map((r) => r.message as HealthReport)
  const count = (version: string, k: keyof HealthReport['events'][number]['counts']) =>
    reports()
      .flatMap((r) => r.events.filter((e) => e.version === version))
      .reduce((n, e) => n + e.counts[k], 0)

  test('4 crashes of a new version: restarts counted for it, rolled back to previous', async () => {
    await publish(f, '2.0.0', ONE_STAGE, { perturbLayer: 1 })
    await waitAllServing(f, '2.0.0')
    const sup = d.parts.supervisor!
    const restarts: Array<{ version?: string }> = []
    sup.on('restart', (e) => restarts.push({ version: e.model?.version }))
    for (let i = 0; i < 4; i++) {
      await waitFor(() => servedOf(d) === '2.0.0' || restarts.length >= 4, 30_000, `v2 serving before crash ${i + 1}`)
      if (servedOf(d) !== '2.0.0') break
      process.kill(sup.status().workerPid!, 'SIGSEGV')
      await waitFor(() => restarts.length > i, 30_000, `restart ${i + 1}`)
    }
    assert.equal(restarts.length, 4)
    assert.ok(
      restarts.every((r) => r.version === '2.0.0'),
      JSON.stringify(restarts),
    )
    await waitFor(async () => (await activeOf(d)) === '1.0.0' && servedOf(d) === '1.0.0', 30_000, 'back on v1')
    const metrics = await (await fetch(`${d.daemon.apiUrl}/metrics`)).text()
    const crashes = metrics
      .split('\n')
      .filter((l) => l.startsWith('llmesh_inference_restarts_total{') && l.includes('model_version="2.0.0"'))
      .filter((l) => l.includes('reason="crash"'))
      .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0)
    assert.equal(crashes, 4)
    await waitFor(() => count('2.0.0', 'rollbacks') >= 1, 20_000, 'rollback in a report at the seed')
    assert.equal(count('2.0.0', 'restarts'), 4)
    // v2 failed here for good: still v1 after more ticks
    await new Promise((r) => setTimeout(r, 1500))
    assert.equal(await activeOf(d), '1.0.0')
  })
})
