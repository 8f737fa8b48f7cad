/**
 * Issue 6: the relative latency gate with real `llmesh` processes and inference workers in network
 * namespaces, under steady load. Seed + 4 devices (d1 the pilot: one device fetches and runs the
 * big model, which keeps the test's CPU bill low on 2 cores); a load client in the seed's namespace
 * sends short completions, one at a time, to every device over the bridge.
 * v3 (2 layers, 64 wide) runs everywhere; v4 (8 layers, 512 wide: well over 10x slower per token
 * on this machine) goes to the pilot. Its p95 against the devices still on v3 over the
 * same span fails `latency_p95_ms: { max_regression_pct: 100 }` (a 2x margin), the fleet aborts
 * v4, the pilot goes back to v3, and d2, d3, d4 never activate (nor, with `prestage: false`, fetch) v4.
 */

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { GateFigure } from '../../protocols/index.ts'
import { POLICIES, scaled } from '../helpers/index.ts'
import type { LanNode } from './helpers.ts'
import { badLines, canRunBed, REPO_ROOT, until } from './netns.ts'
import { logTime, publishTiny, type RolloutBed, rolloutOf, serving, startRolloutBed, statusOf } from './rollout-bed.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const LOAD = join(REPO_ROOT, 'test', 'lan', 'load-client.ts')
const SLOW_GATED = `
stages:
  - { name: pilot, tags: [pilot], window: 3s }
  - { name: full, percent: 100 }
gates:
  latency_p95_ms: { max_regression_pct: 100 }
  min_reports: 1
exclude_tags: [seed]
prestage: false
`

describe('relative latency gate (network namespaces)', { skip, timeout: scaled(280_000) }, () => {
  let rb: RolloutBed

  before(async () => {
    rb = await startRolloutBed({ tags: [['pilot'], [], [], []] })
  })

  after(async () => {
    await rb?.bed.destroy()
  })

  test('a much slower v4 fails the regression gate against v3 under load and is aborted', async () => {
    const { bed, devices } = rb
    const allServing = async (v: string) =>
      (await Promise.all(devices.map((n) => statusOf(bed, n)))).every((s) => serving(s, v))
    await publishTiny(rb, '3.0.0', POLICIES.ONE_STAGE)
    await until(() => allServing('3.0.0'), 90_000, 'every device serving v3')

    const load = bed.spawn(bed.hosts[0], 'load-client', process.execPath, [
      LOAD,
      ...['--max-tokens', '8'],
      ...devices.map((n) => `${n.info.api}/v1`),
    ])
    const t0 = Date.now()
    await publishTiny(rb, '4.0.0', SLOW_GATED, { layers: 8, embd: 512 })
    const published = Date.now() - t0
    await until(
      async () =>
        (await Promise.all(rb.nodes.map((n) => rolloutOf(bed, n, '4.0.0')))).every((r) => r?.state === 'aborted'),
      180_000,
      'v4 aborted on every node',
    )
    const abortedMs = Date.now() - t0
    await until(() => allServing('3.0.0'), 60_000, 'every device back on v3')
    await bed.terminate(load)

    const [d1, d2, d3, d4] = devices
    // the pilot ran v4 and came back; the others never activated it
    const pilotServed = logTime(d1, 'release serving', '4.0.0')
    assert.ok(pilotServed !== undefined, 'the pilot served v4')
    for (const n of [d2, d3, d4]) {
      assert.equal(logTime(n, 'activating release', '4.0.0'), undefined, `${n.proc.name} activated v4`)
      assert.ok(!(await statusOf(bed, n)).models.tiny?.staged.includes('4.0.0'), `${n.proc.name} fetched v4`)
    }
    // the abort is the fleet's verdict on the latency gate, carried by the adopted verdict
    const st = (await rolloutOf(bed, d3, '4.0.0'))!
    assert.ok(st.abortedBy?.startsWith('verdict:'), st.abortedBy)
    const abort = st.verdicts.find((v) => v.outcome === 'abort' && v.adopted)!
    assert.equal(abort.stage, 0)
    const line = (await readFile(join(d3.dataDir, 'messages.jsonl'), 'utf8'))
      .split('\n')
      .find((l) => l.includes(`"d":"${abort.digest}"`))!
    const figures = (JSON.parse(line) as { m: { figures: GateFigure[] } }).m.figures
    const fig = figures.find((g) => g.gate === 'latency_p95_ms.regression')!
    assert.equal(fig.pass, false, JSON.stringify(figures))
    assert.ok(fig.value! > fig.threshold! && fig.baseline! > 0, JSON.stringify(fig))
    // the latency regression failed; no health gate did (the workers ran v4 fine, only slowly)
    const failed = figures.filter((g) => !g.pass).map((g) => g.gate)
    assert.ok(
      failed.every((g) => ['latency_p95_ms.regression', 'window_ms', 'min_reports'].includes(g)),
      JSON.stringify(figures),
    )
    const served = load.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event: string; url: string; ok: number })
      .filter((e) => e.event === 'done')
    assert.equal(served.length, 4)
    assert.ok(
      served.every((e) => e.ok > 0),
      JSON.stringify(served),
    )
    console.log(
      `# figure (LAN): p95 candidate ${fig.value?.toFixed(1)} ms vs baseline ${fig.baseline?.toFixed(1)} ms ` +
        `(allowed ${fig.threshold?.toFixed(1)} ms); publish took ${published} ms, pilot serving v4 at ` +
        `+${pilotServed - t0} ms, aborted everywhere at +${abortedMs} ms`,
    )

    for (const n of rb.nodes as LanNode[]) {
      const exit = await bed.terminate(n.proc)
      assert.equal(exit.code, 0, `${n.proc.name} exit ${JSON.stringify(exit)}`)
      assert.deepEqual(badLines(n.proc), [], n.proc.name)
    }
  })
})
