/**
 * A model's FIRST release aborted by the operator (signed command through the seed's API), with
 * real daemons on loopback (seed + 2 devices, real installer, inference worker, health reports and
 * rollout controllers): no device runs an inference worker process before its first release; every
 * device that ran v1 ends with nothing active and nothing served (no `active` link, inference
 * worker process gone, the OpenAI routes answer 503 `model_deactivated`),
 * /status says why, later health reports claim no version, v1 is never activated again by itself;
 * then a good v2 activates everywhere.
 */

import assert from 'node:assert/strict'
import { lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { HealthReport } from '../../protocols/index.ts'
import { POLICIES, scaled } from '../helpers/index.ts'
import { workerPids } from '../helpers/processes.ts'
import {
  activeOf,
  command,
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

async function chat(d: FleetDevice): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  const res = await fetch(`${d.daemon.apiUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
  })
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } }
}

async function statusOf(d: FleetDevice) {
  const res = await fetch(`${d.daemon.apiUrl}/status`)
  return (await res.json()) as {
    models: Record<string, { active: string | null; deactivated?: { version: string; reason: string } }>
    rollout: { deactivated: Record<string, { version: string; reason: string }> }
  }
}

/** The newest health report of a device as the seed holds it. */
function lastReport(f: RolloutFleet, d: FleetDevice): HealthReport | undefined {
  return f.seed.context.store
    .list('HealthReport')
    .map((x) => x.message)
    .filter((r) => r.device === d.id)
    .sort((a, b) => a.seq - b.seq)
    .at(-1)
}

describe('aborting a model first release deactivates it', { timeout: scaled(150_000) }, () => {
  let f: RolloutFleet
  before(async () => {
    f = await startRolloutFleet([[], []])
  })
  after(async () => {
    await f?.stop()
  })

  test('v1 aborted: nothing active, nothing served, /status says why; v2 then activates', async () => {
    // before any release: no inference worker process at all (every daemon runs in this process)
    assert.deepEqual(await workerPids(), [])
    await publish(f, '1.0.0', POLICIES.ONE_STAGE)
    await waitAllServing(f, '1.0.0')
    for (const d of f.devices) {
      assert.equal((await chat(d)).status, 200)
      assert.ok(d.parts.supervisor!.status().workerPid !== undefined)
    }
    const serving = f.devices.map((d) => d.parts.supervisor!.status().workerPid).sort()
    assert.deepEqual((await workerPids()).sort(), serving, 'one worker per device serving v1')

    await command(String(f.seed.apiUrl), 'abort', '1.0.0', { reason: 'scale the canary to 0%' })
    await waitFor(
      async () => {
        for (const d of f.devices) {
          if ((await activeOf(d)) !== null || servedOf(d) !== undefined) return false
          if (d.parts.supervisor!.deactivation === undefined) return false
        }
        return true
      },
      30_000,
      'every device deactivated v1',
    )
    const deactivatedAt = Date.now()
    await waitFor(async () => (await workerPids()).length === 0, 10_000, 'every worker process gone')
    for (const d of f.devices) {
      assert.equal(rolloutOf(d.parts, '1.0.0')?.state, 'aborted')
      // no `active` link on disk, the worker process is gone
      await assert.rejects(lstat(join(f.dir, d.name, 'models/tiny/active')), { code: 'ENOENT' })
      const sup = d.parts.supervisor!
      assert.equal(sup.state, 'idle')
      assert.equal(sup.status().workerPid, undefined)
      // the OpenAI routes refuse the model with a clear code
      const r = await chat(d)
      assert.equal(r.status, 503)
      assert.equal(r.body.error?.code, 'model_deactivated')
      assert.match(r.body.error?.message ?? '', /release aborted/)
      const models = (await (await fetch(`${d.daemon.apiUrl}/v1/models`)).json()) as { data: unknown[] }
      assert.deepEqual(models.data, [])
      // /status: no active version, and why
      const st = await statusOf(d)
      assert.equal(st.models.tiny.active, null)
      assert.deepEqual(
        { version: st.models.tiny.deactivated?.version, reason: st.models.tiny.deactivated?.reason },
        { version: '1.0.0', reason: 'release aborted' },
      )
      assert.equal(st.rollout.deactivated.tiny?.reason, 'release aborted')
      assert.deepEqual(await d.parts.controller!.activeVersions(), [])
    }

    // health reports made after the deactivation claim no version
    await waitFor(
      () => f.devices.every((d) => (lastReport(f, d)?.window.start ?? 0) > deactivatedAt),
      20_000,
      'fresh health reports',
    )
    for (const d of f.devices) assert.deepEqual(lastReport(f, d)?.active, [])

    // v1 is never activated again by itself
    await decisionsLater(f.devices.map((d) => d.parts))
    for (const d of f.devices) {
      assert.equal(await activeOf(d), null)
      assert.equal(d.activated.filter((a) => a.version === '1.0.0').length, 1)
      assert.equal(d.loaded.filter((l) => l.version === '1.0.0').length, 1)
    }

    // a good v2 activates normally and is served
    await publish(f, '2.0.0', POLICIES.ONE_STAGE, { perturbLayer: 1 })
    await waitAllServing(f, '2.0.0')
    for (const d of f.devices) {
      const r = await chat(d)
      assert.equal(r.status, 200)
      const st = await statusOf(d)
      assert.equal(st.models.tiny.active, '2.0.0')
      assert.equal(st.models.tiny.deactivated, undefined)
      assert.deepEqual(await d.parts.controller!.activeVersions(), [{ model: 'tiny', version: '2.0.0' }])
    }
  })
})
