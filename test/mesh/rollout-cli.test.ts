/**
 * `llmesh rollout status|pause|promote|abort` against real daemons: through the seed (which holds
 * the operator key), and signed locally with `--fleet <dir>` and sent to a device's API
 * (`POST /messages`); a node without the key refuses to sign.
 */

import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { loadFleet } from '../../node/fleet/index.ts'
import { cli, POLICIES, scaled, suiteTmpDir } from '../helpers/index.ts'
import { publish, type RolloutFleet, rolloutOf, startRolloutFleet, waitFor } from './rollout-helpers.ts'

describe('llmesh rollout CLI', { timeout: scaled(100_000) }, () => {
  let f: RolloutFleet
  let fleetDir: string
  const home = suiteTmpDir('llmesh-rollout-cli-')
  before(async () => {
    fleetDir = join(home, 'fleet')
    const init = await cli(['fleet', 'init', fleetDir, '--fleet-id', 'cli-fleet', '--auto-enroll'])
    assert.equal(init.code, 0, init.stderr)
    const fl = await loadFleet(fleetDir)
    f = await startRolloutFleet([['pilot'], []], {
      id: fl.root.fleet,
      psk: fl.swarmKey,
      signer: fl.operatorSigner!,
      trust: fl.root,
    })
    await publish(f, '1.0.0', POLICIES.PILOT_THEN_ALL('10m'))
  })
  after(async () => {
    await f?.stop()
  })

  test('status names each release state; pause through the seed; promote signed locally via a device', async () => {
    const seedApi = String(f.seed.apiUrl)
    const deviceApi = String(f.devices[1].daemon.apiUrl)
    await waitFor(() => rolloutOf(f.seedParts, '1.0.0') !== undefined, 20_000, 'seed knows v1')
    const st = await cli(['rollout', 'status', '--api', seedApi, '--json'])
    assert.equal(st.code, 0, st.stderr)
    const json = JSON.parse(st.stdout) as { releases: Array<{ model: string; version: string; state: string }> }
    assert.deepEqual(
      json.releases.map((r) => `${r.model}@${r.version} ${r.state}`),
      ['tiny@1.0.0 pilot'],
    )

    const pause = await cli(['rollout', 'pause', 'tiny@1.0.0', '--api', seedApi, '--reason', 'look first', '--json'])
    assert.equal(pause.code, 0, pause.stderr)
    assert.equal((JSON.parse(pause.stdout) as { via: string }).via, 'node')
    await waitFor(() => f.devices.every((d) => rolloutOf(d.parts, '1.0.0')?.state === 'paused'), 20_000, 'paused')

    // a device holds no operator key: it refuses to sign
    const refused = await cli(['rollout', 'abort', 'tiny@1.0.0', '--api', deviceApi])
    assert.equal(refused.code, 4, 'refused by the daemon')
    assert.match(refused.stderr, /ERR_NO_OPERATOR_KEY/)

    // with the fleet directory, the CLI signs and any node publishes the signed bytes
    const promote = await cli([
      'rollout',
      'promote',
      'tiny@1.0.0',
      '--to-stage',
      'full',
      '--fleet',
      fleetDir,
      '--api',
      deviceApi,
      '--json',
    ])
    assert.equal(promote.code, 0, promote.stderr)
    assert.equal((JSON.parse(promote.stdout) as { via: string }).via, 'local-key')
    await waitFor(
      () => [f.seedParts, ...f.devices.map((d) => d.parts)].every((p) => rolloutOf(p, '1.0.0')?.state === 'promoted'),
      20_000,
      'promoted everywhere',
    )
    const human = await cli(['rollout', 'status', 'tiny@1.0.0', '--api', seedApi])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /tiny@1\.0\.0 {2}promoted/)
    assert.match(human.stdout, /command pause/)
    assert.match(human.stdout, /command promote → full/)
    assert.match(human.stdout, /cohort pilot: /)
    const bad = await cli(['rollout', 'pause', 'tiny', '--api', seedApi])
    assert.equal(bad.code, 2, 'a usage error')
    assert.match(bad.stderr, /model>@<version/)
  })

  test('a command for a release no node knows is refused, signed nowhere, with a non-zero exit', async () => {
    const seedApi = String(f.seed.apiUrl)
    const deviceApi = String(f.devices[1].daemon.apiUrl)
    const before = f.seedParts.controller!.statusJson().releases.flatMap((r) => r.commands).length
    const res = await fetch(`${seedApi}/rollout/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'pause', model: 'nope', version: '1.0.0' }),
    })
    assert.equal(res.status, 404)
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_UNKNOWN_RELEASE')
    const viaSeed = await cli(['rollout', 'pause', 'nope@1.0.0', '--api', seedApi, '--json'])
    assert.equal(viaSeed.code, 4, 'refused by the daemon')
    assert.match(viaSeed.stderr, /ERR_UNKNOWN_RELEASE/)
    // under --json, stdout is the daemon's error body plus the class
    assert.deepEqual(JSON.parse(viaSeed.stdout), {
      error: {
        code: 'ERR_UNKNOWN_RELEASE',
        message: 'nope@1.0.0 is not a release this node knows (see llmesh rollout status)',
        class: 'refused',
      },
    })
    // signed locally: refused before anything is signed or sent
    const viaDevice = await cli(['rollout', 'abort', 'tiny@9.9.9', '--fleet', fleetDir, '--api', deviceApi])
    assert.equal(viaDevice.code, 4)
    assert.match(viaDevice.stderr, /ERR_UNKNOWN_RELEASE/)
    const status = await cli(['rollout', 'status', 'nope@1.0.0', '--api', seedApi])
    assert.equal(status.code, 4)
    assert.match(status.stderr, /ERR_UNKNOWN_RELEASE/)
    assert.equal(f.seedParts.controller!.statusJson().releases.flatMap((r) => r.commands).length, before)
    assert.equal(f.seedParts.controller!.statusJson().releases.length, 1)
  })
})
