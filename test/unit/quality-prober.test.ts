/** The quality prober's scheduling, with a fake clock and a fake supervisor (pure logic of when to probe). */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { describe, test } from 'node:test'
import type { ScoreResult, ScoreSpec } from '../../node/inference/ipc.ts'
import { silentLogger } from '../../node/logger.ts'
import { QUALITY_IDLE_MS, QUALITY_PROBE_INTERVAL_MS } from '../../node/quality/constants.ts'
import { createQualityMetrics } from '../../node/quality/metrics.ts'
import { probeSetsFor } from '../../node/quality/probe-sets.ts'
import { type ProberTimers, QualityProber } from '../../node/quality/prober.ts'
import { type ProbeSet, probeSetDigest, type ReleaseManifest } from '../../protocols/schemas/index.ts'
import { exampleRelease } from '../fixtures/messages.ts'

/** A fake clock: timers fire when `advance` passes them. */
class FakeClock implements ProberTimers {
  t = 0
  private timers: Array<{ at: number; fn: () => void; id: number }> = []
  private ids = 0
  now = () => this.t
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.ids
    this.timers.push({ at: this.t + ms, fn, id })
    return id
  }
  clearTimeout = (h: unknown) => {
    this.timers = this.timers.filter((x) => x.id !== h)
  }
  /** Moves time on, firing due timers and letting their promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at)
      const next = this.timers[0]
      if (next === undefined || next.at > end) break
      this.timers.shift()
      this.t = next.at
      next.fn()
      for (let i = 0; i < 20; i++) await Promise.resolve()
    }
    this.t = Math.max(this.t, end)
  }
}

/** A supervisor that scores probes in `costMs` of fake time (or waits for an abort). */
class FakeSupervisor extends EventEmitter {
  state = 'ready'
  model: { name: string; version: string | undefined; path: string } | undefined = {
    name: 'm',
    version: '1.0.0',
    path: '/v1',
  }
  active = 0
  waiting = 0
  calls: ScoreSpec[] = []
  hang = false
  private readonly clock: FakeClock
  constructor(clock: FakeClock) {
    super()
    this.clock = clock
  }
  status() {
    return { active: this.active, waiting: this.waiting }
  }
  score(spec: ScoreSpec, signal?: AbortSignal): Promise<ScoreResult> {
    this.calls.push(spec)
    if (this.hang) {
      return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('preempted'))))
    }
    this.clock.t += 500 // the probe took 500 ms
    return Promise.resolve({ tokens: 4, agreed: spec.prompt === 'bad' ? 1 : 4, nll: 4 * Math.log(10) })
  }
  request(active: number, waiting = 0) {
    this.active = active
    this.waiting = waiting
    this.emit('queue', { active, waiting })
  }
}

const SET: ProbeSet = {
  id: 'smoke',
  generation: { greedy: true, max_tokens: 4 },
  probes: [
    { prompt: 'a', reference: 'x' },
    { prompt: 'bad', reference: 'y' },
    { prompt: 'c', reference: 'z', reference_tokens: [5, 6, 7, 8] },
  ],
}
const DIGEST = probeSetDigest(SET)

function setup() {
  const clock = new FakeClock()
  const sup = new FakeSupervisor(clock)
  const prober = new QualityProber(
    { supervisor: sup, probeSets: () => [{ digest: DIGEST, set: SET }], logger: silentLogger(), timers: clock },
    {},
  )
  return { clock, sup, prober }
}

describe('quality prober', () => {
  test('one probe per interval when idle, then the pass figures; a complete pass is not run again', async () => {
    const { clock, sup, prober } = setup()
    prober.start()
    await clock.advance(QUALITY_PROBE_INTERVAL_MS)
    assert.equal(sup.calls.length, 1, 'one probe on the first tick')
    assert.deepEqual(sup.calls[0], { prompt: 'a', reference: 'x', referenceTokens: undefined, maxTokens: 4 })
    assert.deepEqual(prober.figures(), [], 'no figures before the pass is complete')
    // the 500 ms probe at a 10 % share: the next waits max(interval, 4.5 s) = the interval
    await clock.advance(QUALITY_PROBE_INTERVAL_MS - 1)
    assert.equal(sup.calls.length, 1)
    await clock.advance(1)
    assert.equal(sup.calls.length, 2)
    await clock.advance(QUALITY_PROBE_INTERVAL_MS)
    assert.equal(sup.calls.length, 3)
    assert.deepEqual(sup.calls[2].referenceTokens, [5, 6, 7, 8])
    const [f] = prober.figures()
    assert.deepEqual(
      { ...f, nll: Math.round(f.nll * 1000) / 1000 },
      {
        model: 'm',
        version: '1.0.0',
        probe_set: DIGEST,
        probes: 3,
        tokens: 12,
        agreed: 9,
        nll: Math.round(12 * Math.log(10) * 1000) / 1000,
      },
    )
    await clock.advance(10 * QUALITY_PROBE_INTERVAL_MS)
    assert.equal(sup.calls.length, 3, 'deterministic figures: the pass is not repeated')
    prober.stop()
  })

  test('never probes while a request runs or waits, nor within the idle delay after one', async () => {
    const { clock, sup, prober } = setup()
    prober.start()
    sup.request(1)
    await clock.advance(5 * QUALITY_PROBE_INTERVAL_MS)
    assert.equal(sup.calls.length, 0)
    sup.request(0, 1)
    await clock.advance(QUALITY_PROBE_INTERVAL_MS)
    assert.equal(sup.calls.length, 0)
    sup.request(0, 0)
    // busy seen at the last tick: the next tick is idle long enough (interval > idle delay)
    assert.ok(QUALITY_PROBE_INTERVAL_MS > QUALITY_IDLE_MS)
    await clock.advance(QUALITY_PROBE_INTERVAL_MS)
    assert.equal(sup.calls.length, 1)
    prober.stop()
  })

  test('a request preempts a running probe; it is retried later and the pass completes', async () => {
    const { clock, sup, prober } = setup()
    sup.hang = true
    prober.start()
    await clock.advance(QUALITY_PROBE_INTERVAL_MS)
    assert.equal(sup.calls.length, 1)
    sup.request(1)
    for (let i = 0; i < 5; i++) await Promise.resolve()
    assert.equal(prober.counters.preempted, 1)
    sup.request(0)
    sup.hang = false
    await clock.advance(4 * QUALITY_PROBE_INTERVAL_MS)
    assert.equal(prober.counters.passes, 1)
    assert.equal(prober.figures()[0].probes, 3, 'the preempted probe counted once, when it completed')
    prober.stop()
  })

  test('a slow probe spaces the next by the CPU share; a model switch drops the pass; not ready: nothing', async () => {
    const { clock, sup, prober } = setup()
    sup.score = function (spec: ScoreSpec) {
      this.calls.push(spec)
      clock.t += 3_000 // 3 s probe → next after 27 s at 10 %
      return Promise.resolve({ tokens: 1, agreed: 1, nll: 0 })
    }
    prober.start()
    await clock.advance(QUALITY_PROBE_INTERVAL_MS)
    assert.equal(sup.calls.length, 1)
    await clock.advance(26_000)
    assert.equal(sup.calls.length, 1)
    await clock.advance(1_000)
    assert.equal(sup.calls.length, 2)
    sup.model = { name: 'm', version: '2.0.0', path: '/v2' }
    sup.state = 'loading'
    await clock.advance(100_000)
    assert.equal(sup.calls.length, 2, 'nothing while not ready')
    sup.state = 'ready'
    await clock.advance(3 * 30_000)
    assert.equal(prober.figures().length, 1)
    assert.equal(prober.figures()[0].version, '2.0.0', 'the v1 pass was dropped, v2 ran from its first probe')
    prober.stop()
  })

  test('/metrics: probes by outcome, passes, and the figures of each complete pass', async () => {
    const { clock, prober } = setup()
    const registry = createQualityMetrics(prober)
    assert.doesNotMatch(await registry.metrics(), /llmesh_quality_agreement\{/)
    prober.start()
    await clock.advance(4 * QUALITY_PROBE_INTERVAL_MS)
    const text = await registry.metrics()
    assert.match(text, /llmesh_quality_probes_total\{outcome="scored"\} 3/)
    assert.match(text, /llmesh_quality_passes_total 1/)
    const labels = `model="m",model_version="1.0.0",probe_set="${DIGEST.slice(0, 12)}"`
    assert.ok(text.includes(`llmesh_quality_agreement{${labels}} 0.75`), text)
    const ppl = Number(text.split(`llmesh_quality_perplexity{${labels}} `)[1]?.split('\n')[0])
    assert.ok(Math.abs(ppl - 10) < 1e-5, text)
    prober.stop()
  })

  test('disabled: never probes', async () => {
    const clock = new FakeClock()
    const sup = new FakeSupervisor(clock)
    const p = new QualityProber(
      { supervisor: sup, probeSets: () => [{ digest: DIGEST, set: SET }], logger: silentLogger(), timers: clock },
      { enabled: false },
    )
    p.start()
    await clock.advance(10 * QUALITY_PROBE_INTERVAL_MS)
    assert.equal(sup.calls.length, 0)
  })

  test('which sets run on a version: its own and newer releases of the model (baselines), newest first, at most 3', () => {
    const set = (id: string): ProbeSet => ({ ...SET, id })
    const rel = (version: string, seq: number, probes?: ProbeSet, model = 'm'): ReleaseManifest =>
      exampleRelease({
        model,
        version,
        seq,
        ...(probes ? { probes } : {}),
        provenance: {
          approved_by: [],
          ...(probes ? { validation_dataset: { id: probes.id, digest: probeSetDigest(probes) } } : {}),
        },
      })
    const ms = [
      rel('1.0.0', 1),
      rel('2.0.0', 2, set('a')),
      rel('3.0.0', 3, set('b')),
      rel('3.1.0', 4, set('b')),
      rel('4.0.0', 5, set('c')),
      rel('5.0.0', 6, set('d')),
      rel('9.0.0', 9, set('x'), 'other'),
    ]
    const ids = (v: string) => probeSetsFor(ms, 'm', v).map((s) => s.set.id)
    assert.deepEqual(ids('1.0.0'), ['d', 'c', 'b'], 'newest first, a digest once, at most 3')
    assert.deepEqual(ids('3.1.0'), ['d', 'c', 'b'])
    assert.deepEqual(ids('5.0.0'), ['d'])
    assert.deepEqual(ids('0.0.1'), [], 'a version without a manifest here runs nothing')
    assert.equal(probeSetsFor(ms, 'm', '2.0.0')[2].digest, probeSetDigest(set('b')))
  })
})
