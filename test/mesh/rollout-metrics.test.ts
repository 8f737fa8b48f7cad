/**
 * The rollout metrics of real daemons (seed + 1 device on loopback, the real composition): after
 * v1 then v2 activate and an operator aborts v2 through the seed's API, the device's /metrics shows
 * its fleet rollback counter for v2 at 1, v2's release state `aborted` (1, its other states 0),
 * v1 as the version it serves and its own identity; the seed's /metrics (no inference) shows its
 * identity (role seed) and v2 aborted too. Both expositions pass `promtool check metrics` (when
 * installed; required under CI=true).
 */

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { after, describe, test } from 'node:test'
import { POLICIES, scaled } from '../helpers/index.ts'
import { command, publish, type RolloutFleet, startRolloutFleet, waitAllServing, waitFor } from './rollout-helpers.ts'

const PROMTOOL = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool'
const hasPromtool = existsSync(PROMTOOL)

/** `name{labels}` → value, for the samples of `name`. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m?.[1] === name) out.set(m[2] ?? '', Number(m[3]))
  }
  return out
}

async function scrape(api: string): Promise<string> {
  const res = await fetch(`${api}/metrics`)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/)
  return res.text()
}

function promtoolCheck(text: string): Promise<string> {
  return new Promise((done) => {
    const child = execFile(PROMTOOL, ['check', 'metrics'], { timeout: 30_000 }, (_e, out, err) => done(`${out}${err}`))
    child.stdin?.end(text)
  })
}

describe('rollout metrics of real daemons', { timeout: scaled(120_000) }, () => {
  let f: RolloutFleet | undefined
  after(async () => {
    await f?.stop()
  })

  test('after an operator abort: fleet rollback counted, release aborted, on the device and the seed', async () => {
    f = await startRolloutFleet([[]])
    const dev = f.devices[0]
    await publish(f, '1.0.0', POLICIES.ONE_STAGE)
    await waitAllServing(f, '1.0.0')
    await publish(f, '1.1.0', POLICIES.ONE_STAGE)
    await waitAllServing(f, '1.1.0')
    let text = await scrape(dev.daemon.apiUrl!)
    assert.equal(samples(text, 'llmesh_rollout_fleet_rollbacks_total').size, 0, 'no rollback yet')
    assert.equal(
      samples(text, 'llmesh_rollout_release_state').get('{model="tiny",model_version="1.1.0",state="promoted"}'),
      1,
    )
    await command(f.seed.apiUrl!, 'abort', '1.1.0', { reason: 'metrics test' })
    const rollbacks = '{model="tiny",model_version="1.1.0"}'
    await waitFor(
      async () => {
        text = await scrape(dev.daemon.apiUrl!)
        return samples(text, 'llmesh_rollout_fleet_rollbacks_total').get(rollbacks) === 1
      },
      30_000,
      'device counts the fleet rollback',
    )
    // the device: the aborted release's state set, what it serves now, who it is
    const state = samples(text, 'llmesh_rollout_release_state')
    assert.equal(state.get('{model="tiny",model_version="1.1.0",state="aborted"}'), 1)
    assert.equal(state.get('{model="tiny",model_version="1.1.0",state="promoted"}'), 0)
    assert.equal(state.get('{model="tiny",model_version="1.0.0",state="promoted"}'), 1)
    await waitFor(
      async () =>
        samples(await scrape(dev.daemon.apiUrl!), 'llmesh_model_active_info').get(
          '{model="tiny",model_version="1.0.0"}',
        ) === 1,
      30_000,
      'device serves 1.0.0 again',
    )
    text = await scrape(dev.daemon.apiUrl!)
    assert.deepEqual([...samples(text, 'llmesh_model_active_info').keys()], ['{model="tiny",model_version="1.0.0"}'])
    const activations = samples(text, 'llmesh_rollout_activations_total')
    assert.equal(activations.get('{model="tiny",model_version="1.0.0"}'), 1)
    assert.equal(activations.get('{model="tiny",model_version="1.1.0"}'), 1)
    assert.equal(samples(text, 'llmesh_rollout_local_rollbacks_total').size, 0)
    assert.equal(samples(text, 'llmesh_rollout_deactivations_total').size, 0)
    const info = [...samples(text, 'llmesh_node_info')]
    assert.deepEqual(info, [
      [
        `{peer_id="${dev.id}",role="node",fleet="${f.fleet.id}",version="${info[0][0].match(/version="([^"]+)"/)?.[1]}"}`,
        1,
      ],
    ])
    assert.match(text, /^llmesh_inference_ready 1$/m, 'inference metrics are still there')

    // the seed: no inference, its identity and the same rollout state
    const seedText = await scrape(f.seed.apiUrl!)
    assert.doesNotMatch(seedText, /llmesh_inference_/)
    assert.equal(
      samples(seedText, 'llmesh_node_info').get(
        `{peer_id="${f.seed.context.identity.peerId}",role="seed",fleet="${f.fleet.id}",version="${info[0][0].match(/version="([^"]+)"/)?.[1]}"}`,
      ),
      1,
    )
    const seedState = samples(seedText, 'llmesh_rollout_release_state')
    assert.equal(seedState.get('{model="tiny",model_version="1.1.0",state="aborted"}'), 1)
    assert.equal(seedState.get('{model="tiny",model_version="1.0.0",state="promoted"}'), 1)
    assert.equal(samples(seedText, 'llmesh_rollout_release_stage').get('{model="tiny",model_version="1.0.0"}'), 0)
    assert.equal(samples(seedText, 'llmesh_model_active_info').size, 0, 'the seed serves nothing')

    if (hasPromtool || process.env.CI === 'true') {
      for (const t of [text, seedText]) assert.equal((await promtoolCheck(t)).trim(), '', 'promtool check metrics')
    }
  })
})
