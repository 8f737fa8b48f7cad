/**
 * Worker faults through a real daemon on loopback (seed + 1 device, the real composition):
 * - a `kill -9` of the worker serving a model's first release (nothing to go back to) is a crash,
 *   not an OOM: the worker is restarted and chat completions are answered again within 15 s; the
 *   model is neither rolled back nor deactivated and the release is not aborted;
 * - the worker of a new version crashing 4 times within minutes (SIGSEGV from outside) is detected as
 * crashes, counted as restarts of THAT version in /metrics and in the signed HealthReports the
 * seed stores, and the device rolls back to `previous` by itself (restart-loop trigger).
 */

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import OpenAI from 'openai'
import type { HealthReport } from '../../protocols/index.ts'
import { POLICIES, scaled } from '../helpers/index.ts'
import {
  activeOf,
  decisionsLater,
  type FleetDevice,
  publish,
  type RolloutFleet,
  rolloutOf,
  servedOf,
  startRolloutFleet,
  waitAllServing,
  waitFor,
} from './rollout-helpers.ts'

describe('inference worker faults through a daemon', { timeout: scaled(120_000) }, () => {
  let f: RolloutFleet
  let d: FleetDevice
  before(async () => {
    f = await startRolloutFleet([[]])
    d = f.devices[0]
    await publish(f, '1.0.0', POLICIES.ONE_STAGE)
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

  test('kill -9 of the worker: a crash, restarted, answering chat completions again within 15 s', async () => {
    const sup = d.parts.supervisor!
    const exits: string[] = []
    sup.on('worker-exit', (e) => exits.push(e.kind))
    const client = new OpenAI({ baseURL: `${d.daemon.apiUrl}/v1`, apiKey: 'none', maxRetries: 0 })
    const chat = () =>
      client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })
    await chat()
    const pid = sup.status().workerPid!
    const t0 = Date.now()
    process.kill(pid, 'SIGKILL')
    let answered: Awaited<ReturnType<typeof chat>> | undefined
    await waitFor(
      async () => {
        answered = await chat().catch(() => undefined)
        return answered !== undefined
      },
      15_000,
      'chat completions answered again',
    )
    const took = Date.now() - t0
    assert.ok((answered?.usage?.completion_tokens ?? 0) >= 1)
    assert.deepEqual(exits, ['crash'])
    assert.notEqual(sup.status().workerPid, pid)
    assert.equal(sup.status().restarts, 1)
    assert.equal(sup.status().deactivated, undefined)
    assert.equal(await activeOf(d), '1.0.0')
    for (const node of [d.parts, f.seedParts]) assert.notEqual(rolloutOf(node, '1.0.0')?.phase, 'aborted')
    await waitFor(() => count('1.0.0', 'restarts') >= 1, 20_000, 'the restart in a report at the seed')
    assert.equal(count('1.0.0', 'ooms'), 0)
    console.log(`kill -9 → serving again after ${took} ms`)
  })

  test('4 crashes of a new version: restarts counted for it, rolled back to previous', async () => {
    await publish(f, '2.0.0', POLICIES.ONE_STAGE, { perturbLayer: 1 })
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
    await decisionsLater([d.parts])
    assert.equal(await activeOf(d), '1.0.0')
  })
})
