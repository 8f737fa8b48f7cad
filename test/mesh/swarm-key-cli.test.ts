/**
 * `llmesh fleet rotate-swarm-key` against real daemons (a seed and three devices on loopback, the
 * real composition): after a device is revoked and the key rotated, the revoked device holds no
 * connection, the others switch to the new key (durably, in /status and /metrics), the fleet
 * directory's swarm.key is the new key, and a new release still reaches the remaining devices.
 */
import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { cli, scaled } from '../helpers/index.ts'
import { tempDir } from './fixtures.ts'
import { activeOf, publish, type RolloutFleet, startRolloutFleetFromDir, waitFor } from './rollout-helpers.ts'

const POLICY = `
stages:
  - { name: full, percent: 100 }
gates:
  min_reports: 1
exclude_tags: [seed]
`

describe('llmesh fleet rotate-swarm-key', { timeout: scaled(240_000) }, () => {
  let f: RolloutFleet
  let fleetDir: string
  let home: { dir: string; cleanup: () => Promise<void> }
  before(async () => {
    home = await tempDir('llmesh-swarm-cli-')
    fleetDir = join(home.dir, 'fleet')
    f = await startRolloutFleetFromDir(fleetDir, 'swarm-fleet', [[], [], []])
  })
  after(async () => {
    await f?.stop()
    await home?.cleanup()
  })

  test('revoke, rotate: the revoked device is off the mesh, the rest switch and still get releases', async () => {
    const api = f.seed.apiUrl as string
    const [d0, d1, revoked] = f.devices
    const oldKey = await readFile(join(fleetDir, 'swarm.key'))
    const rev = await cli(['device', 'revoke', revoked.id, '--api', api, '--reason', 'stolen', '--json'])
    assert.equal(rev.code, 0, rev.stderr)
    const revokedAt = Date.now()
    await waitFor(() => revoked.daemon.context.mesh.peers().length === 0, 60_000, 'the revoked device off the mesh')
    const cutOffMs = Date.now() - revokedAt

    const rotatedAt = Date.now()
    const out = await cli([
      'fleet',
      'rotate-swarm-key',
      fleetDir,
      '--api',
      api,
      '--switch-in',
      `${scaled(3000)}ms`,
      '--json',
    ])
    assert.equal(out.code, 0, out.stderr)
    const r = JSON.parse(out.stdout) as {
      epoch: number
      recipients: string[]
      skipped_revoked: number
      switch_at: number
    }
    assert.equal(r.epoch, 1)
    assert.deepEqual([...r.recipients].sort(), [f.seed.context.identity.peerId, d0.id, d1.id].sort())
    assert.equal(r.skipped_revoked, 1)

    // the fleet directory holds the new key (the old one kept), with its epoch
    const newKey = await readFile(join(fleetDir, 'swarm.key'))
    assert.notDeepEqual(newKey, oldKey)
    assert.deepEqual(await readFile(join(fleetDir, 'swarm.key.0')), oldKey)
    assert.equal((await stat(join(fleetDir, 'swarm.key'))).mode & 0o777, 0o600)
    assert.equal(JSON.parse(await readFile(join(fleetDir, 'swarm-epoch.json'), 'utf8')).epoch, 1)

    const members = [f.seed, d0.daemon, d1.daemon]
    await waitFor(
      () => members.every((d) => Buffer.from(d.context.mesh.swarmKey).equals(newKey)),
      60_000,
      'every member switched to the new key',
    )
    const switchMs = Date.now() - rotatedAt
    const lateMs = Date.now() - r.switch_at
    console.log(
      `# revoke → revoked device off the mesh ${cutOffMs} ms; rotate-swarm-key → all switched ${switchMs} ms ` +
        `(switch-in ${scaled(3000)} ms; last member switched ≤ ${lateMs} ms after switch_at)`,
    )
    assert.ok(Buffer.from(revoked.daemon.context.mesh.swarmKey).equals(oldKey), 'the revoked device has no new key')
    const status = (await (await fetch(`${api}/status`)).json()) as { swarm_key: { epoch: number; applied: number } }
    assert.equal(status.swarm_key.epoch, 1)
    assert.equal(status.swarm_key.applied, 1)
    const metrics = await (await fetch(`${d0.daemon.apiUrl}/metrics`)).text()
    assert.match(metrics, /^llmesh_swarm_key_rotations_applied_total 1$/m)
    assert.match(metrics, /^llmesh_swarm_key_epoch 1$/m)
    const seedMetrics = await (await fetch(`${api}/metrics`)).text()
    const refused = Number(/^llmesh_mesh_revoked_refusals_total (\d+)$/m.exec(seedMetrics)?.[1])
    assert.ok(refused >= 1, `the seed counted its refusals of the revoked device (${refused})`)

    // the others stay meshed and a new release still reaches them (blocks included)
    await waitFor(
      () => d0.daemon.context.mesh.peers().length > 0 && d1.daemon.context.mesh.peers().length > 0,
      30_000,
      'meshed',
    )
    await publish(f, '2.0.0', POLICY)
    await waitFor(
      async () => (await activeOf(d0)) === '2.0.0' && (await activeOf(d1)) === '2.0.0',
      90_000,
      'release on d0, d1',
    )
    assert.equal(revoked.daemon.context.mesh.peers().length, 0, 'the revoked device stayed off the mesh')
    assert.equal(revoked.daemon.context.store.releases().length, 0, 'and got no release')
  })
})
