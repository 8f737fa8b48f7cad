/**
 * The relative latency gate through real daemons under steady load: v2 is a much larger (slower)
 * tiny model; its pilot devices' merged p95 is compared with the devices still on v1 over the same
 * window, the gate fails, the fleet aborts, and the pilots go back to v1.
 */

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { POLICIES, scaled } from '../helpers/index.ts'
import { makeFleet } from './fixtures.ts'
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

const SLOW_GATED = `
stages:
  - { name: pilot, tags: [pilot], window: 3s }
  - { name: full, percent: 100 }
gates:
  latency_p95_ms: { max_regression_pct: 50 }
  min_reports: 2
exclude_tags: [seed]
`

describe('relative latency gate', { timeout: scaled(160_000) }, () => {
  let f: RolloutFleet
  let load = true
  const loops: Promise<void>[] = []
  before(async () => {
    f = await startRolloutFleet([['pilot'], ['pilot'], [], []], makeFleet(), { reportIntervalMs: 3000 })
  })
  after(async () => {
    load = false
    await Promise.allSettled(loops)
    await f?.stop()
  })

  test('a much slower v2 fails the regression gate against v1 and is aborted', async () => {
    await publish(f, '1.0.0', POLICIES.ONE_STAGE)
    await waitAllServing(f, '1.0.0')
    // steady load on every device (sequential requests, a few tokens each)
    for (const d of f.devices) {
      loops.push(
        (async () => {
          // paced (a request, then 100 ms): four busy workers on two cores would starve the pilots'
          // download and model load, and the gate would have no candidate reports to judge
          while (load) {
            await d.parts
              .supervisor!.generate({ mode: 'completion', prompt: 'once upon a time', maxTokens: 12 })
              .catch(() => undefined)
            await new Promise((r) => setTimeout(r, 100))
          }
        })(),
      )
    }
    await publish(f, '2.0.0', SLOW_GATED, { layers: 8, embd: 512 })
    await waitFor(
      () => f.devices.every((d) => rolloutOf(d.parts, '2.0.0')?.state === 'aborted'),
      60_000,
      'v2 aborted by the latency gate',
      () =>
        f.devices.map((d) => {
          const r = rolloutOf(d.parts, '2.0.0')
          return { state: r?.state, stage: r?.stage, gate: r?.gate, active: d.activated.at(-1)?.version }
        }),
    )
    const st = rolloutOf(f.devices[2].parts, '2.0.0')!
    assert.ok(st.abortedBy?.startsWith('verdict:'), st.abortedBy)
    const abort = st.verdicts.find((v) => v.outcome === 'abort' && v.adopted)!
    assert.ok(abort.evidence >= 3, `evidence ${abort.evidence}`)
    await waitFor(
      async () => f.devices.every((d) => servedOf(d) === '1.0.0'),
      30_000,
      'pilots back on v1',
      () => f.devices.map((d) => servedOf(d)),
    )
    for (const d of f.devices) assert.equal(await activeOf(d), '1.0.0')
    for (const d of f.devices.slice(2)) assert.ok(!d.activated.some((a) => a.version === '2.0.0'))
    // the figures the verdict carried: candidate p95 above the baseline's allowance
    const verdict = f.devices[2].daemon.context.store.get(abort.digest)!.message as {
      figures: Array<{ gate: string; value: number | null; threshold: number | null; pass: boolean }>
    }
    const fig = verdict.figures.find((g) => g.gate === 'latency_p95_ms.regression')!
    assert.equal(fig.pass, false)
    assert.ok(fig.value! > fig.threshold!, JSON.stringify(fig))
    console.log(`# figure: p95 candidate ${fig.value?.toFixed(1)} ms vs allowed ${fig.threshold?.toFixed(1)} ms`)
  })
})
