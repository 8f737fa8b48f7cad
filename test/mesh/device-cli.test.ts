/**
 * `llmesh device list|tag|revoke` against real daemons (a seed and three devices on loopback):
 * a re-tag through the seed makes a device part of the pilot cohort of the next release on every
 * node and survives the auto-enroller; a revocation signed locally with `--fleet` and sent through
 * a device's API removes the device's vote on every node, so a stage that needed it holds.
 */

import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { loadFleet } from '../../node/fleet/index.ts'
import type { FleetDevice } from '../../protocols/fleet/device-view.ts'
import type { DeviceView } from '../../seed/devices.ts'
import { cli, scaled, suiteTmpDir } from '../helpers/index.ts'
import {
  command,
  publish,
  type RolloutFleet,
  rolloutOf,
  startRolloutFleet,
  waitAllServing,
  waitFor,
} from './rollout-helpers.ts'

/** The first release: the pilot stage is exactly the devices tagged `pilot`. */
const POLICY_TAGS_ONLY = `
stages:
  - { name: pilot, tags: [pilot] }
  - { name: full, percent: 100 }
gates:
  min_reports: 1
exclude_tags: [seed]
`

/** The second: two pilots must both vote after 6 s. */
const POLICY_TWO_VOTES = `
stages:
  - { name: pilot, tags: [pilot], min_devices: 2, window: 6s }
  - { name: full, percent: 100 }
gates:
  min_reports: 2
exclude_tags: [seed]
`

describe('llmesh device CLI', { timeout: scaled(200_000) }, () => {
  let f: RolloutFleet
  let fleetDir: string
  const home = suiteTmpDir('llmesh-device-cli-')
  before(async () => {
    fleetDir = join(home, 'fleet')
    const init = await cli(['fleet', 'init', fleetDir, '--fleet-id', 'device-fleet', '--auto-enroll'])
    assert.equal(init.code, 0, init.stderr)
    const fl = await loadFleet(fleetDir)
    f = await startRolloutFleet([['pilot'], [], []], {
      id: fl.root.fleet,
      psk: fl.swarmKey,
      signer: fl.operatorSigner!,
      trust: fl.root,
    })
  })
  after(async () => {
    await f?.stop()
  })

  test('re-tag to pilot, then revoke: every node follows', async () => {
    const seedApi = String(f.seed.apiUrl)
    const [d0, d1, d2] = f.devices
    const all = [f.seed, ...f.devices.map((d) => d.daemon)]
    const list = async (api: string) => {
      const r = await cli(['device', 'list', '--api', api, '--json'])
      assert.equal(r.code, 0, r.stderr)
      return new Map((JSON.parse(r.stdout) as { devices: DeviceView[] }).devices.map((d) => [d.id, d]))
    }

    const before = await list(seedApi)
    assert.deepEqual(
      { state: before.get(d1.id)?.state, tags: before.get(d1.id)?.tags, pinned: before.get(d1.id)?.pinned },
      { state: 'enrolled', tags: [], pinned: false },
    )
    assert.equal(before.get(f.seed.context.identity.peerId)?.role, 'seed')

    // re-tag d1 through the seed
    const tag = await cli(['device', 'tag', d1.id, '--tags', 'pilot', '--api', seedApi, '--json'])
    assert.equal(tag.code, 0, tag.stderr)
    assert.deepEqual((JSON.parse(tag.stdout) as { pinned: boolean; via: string }).via, 'seed')
    await waitFor(
      () => all.every((n) => n.context.store.enrollmentOf(d1.id)?.tags.join() === 'pilot'),
      20_000,
      're-tag everywhere',
    )
    // d1 still declares no tags: a fresh anti-entropy round hands its hello to the seed's auto-enroller
    const seedPeer = f.seed.context.mesh.libp2p.peerId
    await d1.daemon.context.mesh.antiEntropy.sync(seedPeer)
    await f.seed.context.mesh.antiEntropy.sync(d1.daemon.context.mesh.libp2p.peerId)
    await new Promise((r) => setTimeout(r, 500))
    assert.deepEqual(f.seed.context.store.enrollmentOf(d1.id)?.tags, ['pilot'], 'the auto-enroller undid the re-tag')
    const tagged = (await list(seedApi)).get(d1.id)
    assert.deepEqual(
      { tags: tagged?.tags, declared: tagged?.declared_tags, pinned: tagged?.pinned },
      { tags: ['pilot'], declared: [], pinned: true },
    )

    // a new release: d0 and d1 are its pilot cohort on every node, d2 is not
    await publish(f, '1.0.0', POLICY_TAGS_ONLY)
    const pilots = [d0.id, d1.id].sort().join()
    await waitFor(
      () =>
        [f.seedParts, ...f.devices.map((d) => d.parts)].every(
          (p) => [...(rolloutOf(p, '1.0.0')?.cohorts.pilot ?? [])].sort().join() === pilots,
        ),
      30_000,
      'd0 and d1 are the pilot cohort everywhere',
    )
    await waitAllServing(f, '1.0.0', 90_000)

    // d2 goes away (still enrolled); the next release needs two pilot votes
    await d2.daemon.stop()
    const v2 = await publish(f, '1.1.0', POLICY_TWO_VOTES)
    await command(seedApi, 'pause', '1.1.0')
    await waitFor(() => rolloutOf(f.seedParts, '1.1.0')?.gate?.reporters === 2, 60_000, 'both pilots vote for 1.1.0')

    const replicating = () =>
      [f.seedParts, d0.parts].filter((p) => p.distribution?.replicator.activePeers().includes(d1.id)).length
    await waitFor(() => replicating() > 0, 10_000, 'd1 replicating before its revocation')
    // revoke d1: signed locally with the fleet directory, sent through d0's API
    const revoke = await cli([
      'device',
      'revoke',
      d1.id,
      '--reason',
      'stolen from the shop',
      '--fleet',
      fleetDir,
      '--api',
      String(d0.daemon.apiUrl),
      '--json',
    ])
    assert.equal(revoke.code, 0, revoke.stderr)
    assert.equal((JSON.parse(revoke.stdout) as { via: string }).via, 'local-key')
    const live = [f.seed, d0.daemon, d1.daemon]
    await waitFor(
      () => live.every((n) => n.context.store.revocationOf(d1.id) !== undefined),
      20_000,
      'revocation everywhere',
    )
    // and no node serves it model blocks any more: its replication sessions are closed, not re-admitted
    await waitFor(() => replicating() === 0, 10_000, 'replication with the revoked device closed')
    await new Promise((r) => setTimeout(r, 2500)) // longer than the replicator's re-dial delay (2 s)
    assert.equal(replicating(), 0, 'the revoked device was let back into replication')
    await command(seedApi, 'resume', '1.1.0')
    // past the window, with d1's vote the pilot would promote; without it the stage holds
    const end = v2.created_at + 6000 + 3000
    await new Promise((r) => setTimeout(r, Math.max(0, end - Date.now())))
    // the controllers take the resume at their next decision (a slow run gets here at once)
    await waitFor(
      () => [f.seedParts, d0.parts].every((p) => rolloutOf(p, '1.1.0')?.state !== 'paused'),
      10_000,
      'resume taken',
    )
    for (const parts of [f.seedParts, d0.parts]) {
      const r = rolloutOf(parts, '1.1.0')
      assert.equal(r?.state, 'pilot', `1.1.0 must hold at pilot, is ${r?.state}`)
      assert.deepEqual({ reporters: r?.gate?.reporters, required: r?.gate?.required }, { reporters: 1, required: 2 })
      assert.ok(
        !Object.values(r?.cohorts ?? {}).some((ids) => ids.includes(d1.id)),
        'a revoked device has no cohort slot',
      )
    }

    const after = (await list(seedApi)).get(d1.id)
    assert.equal(after?.state, 'revoked')
    assert.equal(after?.revoked?.reason, 'stolen from the shop')
    const again = await cli(['device', 'revoke', d1.id, '--reason', 'twice', '--api', seedApi])
    assert.notEqual(again.code, 0)
    assert.match(again.stderr, /ERR_REVOKED/)
    const st = await cli(['status', '--api', String(d0.daemon.apiUrl), '--json'])
    assert.equal(st.code, 0, st.stderr)
    const seen = (JSON.parse(st.stdout) as { devices: FleetDevice[] }).devices.find((d) => d.id === d1.id)
    assert.deepEqual([seen?.membership, seen?.revoked?.reason], ['revoked', 'stolen from the shop'])
  })
})
