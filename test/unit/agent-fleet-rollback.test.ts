/**
 * The fleet rollback of an agent version on a device (node/agent-update/updater.ts with the pure
 * rule of protocols/agent/fallback.ts): the real updater over a real message store and rollout
 * controller (rollout-fakes.ts: the model installer and supervisor are in memory; agent releases
 * need neither), an agent root laid out like /opt/llmesh in a temporary directory. No network, no
 * package fetched: going back uses a version the device holds.
 * - 0.9.1 runs, published with the default `min_agent_version` (0.9.0); the operator aborts it:
 *   the device switches `current` back to 0.9.0, the version install.sh put there (no release of
 *   it exists), through the pending record the wrapper checks, and asks for a restart.
 * - 0.9.1 published with `--min-agent-version 0.9.1` and aborted: nothing held qualifies, and the
 *   admitted release 0.9.0 is below the floor too, so the device stays and says why (`stuck` in
 *   /status, `agent.stuck` in its reports, `llmesh_agent_stuck 1`); `current` is untouched.
 */
import assert from 'node:assert/strict'
import { mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Registry } from 'prom-client'
import { agentUpdateService } from '../../node/agent-update/service.ts'
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import { compatFloor } from '../../protocols/agent/fallback.ts'
import type { AgentRelease } from '../../protocols/schemas/index.ts'
import { exampleCommand, SHA_A, SHA_B } from '../fixtures/messages.ts'
import { tmpDir, waitFor } from '../helpers/index.ts'
import { add, ONE_STAGE, setup } from './rollout-fakes.ts'

function agent(version: string, seq: number, minAgent: string): AgentRelease {
  const now = Date.now()
  return {
    type: 'AgentRelease',
    v: 1,
    fleet: 'test-fleet',
    version,
    seq,
    packages: [
      {
        arch: 'x64',
        name: `llmesh-${version}-linux-x64.tar.gz`,
        size: 1000,
        sha256: SHA_A,
        chunks: {
          feed: SHA_B,
          feed_length: 1,
          chunking: { algo: 'fastcdc', min: 16_384, avg: 65_536, max: 262_144 },
          chunks: [{ hash: SHA_A, block: 0, size: 1000 }],
        },
      },
    ],
    min_agent_version: minAgent,
    policy: ONE_STAGE,
    provenance: { approved_by: [] },
    created_at: now - 1000 + seq,
    expires_at: now + 86_400_000,
  }
}

/** An agent root holding `versions` (each with its launcher), `current` → `running`. */
async function root(dir: string, versions: string[], running: string): Promise<string> {
  for (const v of versions) {
    await mkdir(join(dir, v, 'bin'), { recursive: true })
    await writeFile(join(dir, v, 'bin', 'llmesh'), '#!/bin/sh\n', { mode: 0o755 })
  }
  await symlink(running, join(dir, 'current'))
  return dir
}

/** A device running 0.9.1 under the wrapper, its updater on the real controller. */
async function device(t: Parameters<typeof tmpDir>[0], held: string[]) {
  const s = await setup()
  const dir = await root(await tmpDir(t, 'llmesh-agent-root-'), held, '0.9.1')
  const registry = new Registry()
  let restarts = 0
  const svc = agentUpdateService(
    { ctx: s.ctx as never, store: () => ({}) as never, rollout: () => s.controller.agent, registry },
    { root: dir, running: '0.9.1', enabled: true, supervised: true, arch: 'x64', restart: () => restarts++ },
  )
  await s.controller.start()
  await svc.start()
  t.after(async () => {
    await svc.stop()
    await s.controller.stop()
  })
  const abort = (version: string) =>
    add(
      s.store,
      exampleCommand({ model: AGENT_LINEAGE, version, action: 'abort', issued_at: Date.now(), id: 'ab'.repeat(8) }),
    )
  return { s, dir, svc, registry, abort, restarts: () => restarts }
}

describe('an agent version the fleet aborts on devices that already run it', () => {
  test('the device goes back to the newest held version the default min_agent_version allows', async (t) => {
    const d = await device(t, ['0.8.0', '0.9.0', '0.9.1'])
    add(d.s.store, agent('0.9.1', 2, compatFloor('0.9.1')))
    await waitFor(() => d.s.controller.agent.agentTarget() === '0.9.1', { what: '0.9.1 admitted' })
    assert.equal(d.restarts(), 0, 'nothing to do while 0.9.1 is admitted')
    d.abort('0.9.1')
    await waitFor(() => d.restarts() === 1, { what: 'a restart into 0.9.0', detail: () => d.svc.updater.info() })
    assert.equal(await readlink(join(d.dir, 'current')), '0.9.0')
    const pending = JSON.parse(await readFile(join(d.dir, '.agent-pending.json'), 'utf8'))
    assert.deepEqual(pending, { version: '0.9.0', previous: '0.9.1' }, 'the wrapper puts 0.9.1 back if 0.9.0 fails')
    assert.deepEqual([d.svc.updater.info().state, d.svc.updater.info().target], ['switched', '0.9.0'])
    assert.equal(d.svc.report()?.stuck, undefined)
    assert.match(await d.registry.metrics(), /^llmesh_agent_stuck\{version="0\.9\.1"\} 0$/m)
  })

  test('nothing held at or above min_agent_version: the device stays and says why', async (t) => {
    const d = await device(t, ['0.9.0', '0.9.1'])
    add(d.s.store, agent('0.9.0', 1, '0.9.0'))
    add(d.s.store, agent('0.9.1', 2, '0.9.1'))
    await waitFor(() => d.s.controller.agent.agentTarget() === '0.9.1', { what: '0.9.1 admitted' })
    d.abort('0.9.1')
    await waitFor(() => d.svc.updater.info().state === 'stuck', {
      what: 'the updater stuck on 0.9.1',
      detail: () => d.svc.updater.info(),
    })
    assert.equal(d.s.controller.agent.agentTarget(), '0.9.0', 'the rollout admits 0.9.0, below the floor')
    const info = d.svc.updater.info()
    assert.equal(info.target, '0.9.1')
    assert.match(info.reason ?? '', /needs 0\.9\.1 or later .*0\.9\.0: below min_agent_version/)
    assert.equal(d.svc.report()?.stuck, info.reason)
    assert.match(await d.registry.metrics(), /^llmesh_agent_stuck\{version="0\.9\.1"\} 1$/m)
    assert.equal(d.restarts(), 0)
    assert.equal(await readlink(join(d.dir, 'current')), '0.9.1')
  })
})
