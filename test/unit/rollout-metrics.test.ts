/**
 * node/rollout/metrics.ts on its own registry, with a fake controller: node identity, the versions
 * served, deactivations, the release state set (1 for the current state, 0 for the other states
 * of its policy and phases), stage and gate outcome, the newest releases only, and the counters
 * from rollout events with bounded labels. `promtool check metrics` (when installed) finds nothing
 * to lint in the exposition.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, test } from 'node:test'
import {
  deactivationReason,
  pausedSince,
  RolloutMetrics,
  type RolloutMetricsSource,
  releaseStates,
} from '../../node/rollout/metrics.ts'
import type { Deactivation } from '../../node/rollout/persisted.ts'
import type { ReleaseRolloutStatus } from '../../node/rollout/plan.ts'
import type { RolloutEventListener } from '../../node/rollout/rollout-events.ts'

const PROMTOOL = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool'

function release(version: string, seq: number, state: string, stage: number, gate?: string): ReleaseRolloutStatus {
  return {
    model: 'tiny',
    version,
    seq,
    state,
    phase: state === 'promoted' || state === 'paused' || state === 'aborted' ? state : 'rolling',
    stage,
    stageName: ['pilot', 'canary', 'full'][stage],
    stageStartedAt: null,
    previous: null,
    gate: gate === undefined ? null : { outcome: gate, figures: [], reasons: [], reporters: 0, required: 0 },
    verdicts: [],
    commands: [],
    cohorts: { pilot: [], canary: [], full: [], excluded: [] },
  } as unknown as ReleaseRolloutStatus
}

class FakeController implements RolloutMetricsSource {
  releases: ReleaseRolloutStatus[] = []
  deactivated: Record<string, Deactivation> = {}
  active: Array<{ model: string; version: string }> = []
  listeners = new Set<RolloutEventListener>()
  statusJson() {
    return { releases: this.releases, deactivated: this.deactivated }
  }
  async activeVersions() {
    return this.active
  }
  onEvent(fn: RolloutEventListener) {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }
  emit(e: Parameters<RolloutEventListener>[0]) {
    for (const fn of this.listeners) fn(e)
  }
}

/** `name{labels} value` lines of the exposition, without comments. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m?.[1] === name) out.set(m[2] ?? '', Number(m[3]))
  }
  return out
}

describe('RolloutMetrics', () => {
  test('node_info names the node, with value 1; absent until set', async () => {
    const m = new RolloutMetrics()
    assert.equal(samples(await m.registry.metrics(), 'llmesh_node_info').size, 0)
    m.setNode({ peerId: '12D3KooWabc', role: 'seed', fleet: 'acme', version: '9.9.9' })
    const s = samples(await m.registry.metrics(), 'llmesh_node_info')
    assert.deepEqual([...s], [['{peer_id="12D3KooWabc",role="seed",fleet="acme",version="9.9.9"}', 1]])
  })

  test('release state set: 1 for the current state, 0 for the others; stage and gate outcome', async () => {
    const m = new RolloutMetrics()
    const c = new FakeController()
    m.bindController(c)
    c.releases = [release('1.0.0', 1, 'promoted', 2, 'pass'), release('1.1.0', 2, 'canary', 1, 'inconclusive')]
    let text = await m.registry.metrics()
    const state = samples(text, 'llmesh_rollout_release_state')
    assert.equal(state.get('{model="tiny",model_version="1.1.0",state="canary"}'), 1)
    for (const other of ['pilot', 'paused', 'promoted', 'aborted']) {
      assert.equal(state.get(`{model="tiny",model_version="1.1.0",state="${other}"}`), 0, other)
    }
    // the last stage shows as `promoted`, never by its name
    assert.equal(state.get('{model="tiny",model_version="1.1.0",state="full"}'), undefined)
    assert.equal(state.get('{model="tiny",model_version="1.0.0",state="promoted"}'), 1)
    assert.equal([...state.values()].filter((v) => v === 1).length, 2, 'one current state per release')
    const stage = samples(text, 'llmesh_rollout_release_stage')
    assert.equal(stage.get('{model="tiny",model_version="1.1.0"}'), 1)
    assert.equal(stage.get('{model="tiny",model_version="1.0.0"}'), 2)
    const gate = samples(text, 'llmesh_rollout_gate_outcome')
    assert.equal(gate.get('{model="tiny",model_version="1.1.0",outcome="inconclusive"}'), 1)
    assert.equal(gate.get('{model="tiny",model_version="1.1.0",outcome="fail"}'), 0)
    // aborted: the same series flip, no stale 1 left on `canary`
    c.releases = [release('1.0.0', 1, 'promoted', 2), release('1.1.0', 2, 'aborted', 1)]
    text = await m.registry.metrics()
    const after = samples(text, 'llmesh_rollout_release_state')
    assert.equal(after.get('{model="tiny",model_version="1.1.0",state="aborted"}'), 1)
    assert.equal(after.get('{model="tiny",model_version="1.1.0",state="canary"}'), 0)
    assert.equal(samples(text, 'llmesh_rollout_gate_outcome').size, 0, 'no gate, no outcome series')
  })

  test('rollout_stage_info: one series per release, its stage as a label with value 1, following the state', async () => {
    const m = new RolloutMetrics()
    const c = new FakeController()
    m.bindController(c)
    c.releases = [release('1.0.0', 1, 'promoted', 2), release('1.1.0', 2, 'canary', 1)]
    const info = samples(await m.registry.metrics(), 'llmesh_rollout_stage_info')
    assert.deepEqual([...info].sort(), [
      ['{model="tiny",model_version="1.0.0",rollout_stage="promoted"}', 1],
      ['{model="tiny",model_version="1.1.0",rollout_stage="canary"}', 1],
    ])
    // the stage moves: the old label set goes (no stale series to join on)
    c.releases = [release('1.0.0', 1, 'promoted', 2), release('1.1.0', 2, 'aborted', 1)]
    const later = samples(await m.registry.metrics(), 'llmesh_rollout_stage_info')
    assert.equal(later.get('{model="tiny",model_version="1.1.0",rollout_stage="canary"}'), undefined)
    assert.equal(later.get('{model="tiny",model_version="1.1.0",rollout_stage="aborted"}'), 1)
    assert.equal(later.size, 2)
  })

  test('only the newest releases of each model are exported', async () => {
    const m = new RolloutMetrics({ maxReleasesPerModel: 2 })
    const c = new FakeController()
    m.bindController(c)
    c.releases = [1, 2, 3, 4].map((n) => release(`1.${n}.0`, n, 'promoted', 2))
    const stage = samples(await m.registry.metrics(), 'llmesh_rollout_release_stage')
    assert.deepEqual([...stage.keys()].sort(), [
      '{model="tiny",model_version="1.3.0"}',
      '{model="tiny",model_version="1.4.0"}',
    ])
  })

  test('active and deactivated models are read at scrape time', async () => {
    const m = new RolloutMetrics()
    const c = new FakeController()
    m.bindController(c)
    c.active = [{ model: 'tiny', version: '1.0.0' }]
    c.deactivated = { other: { version: '2.0.0', reason: 'local rollback: oom', at: 1 } }
    let text = await m.registry.metrics()
    assert.deepEqual([...samples(text, 'llmesh_model_active_info')], [['{model="tiny",model_version="1.0.0"}', 1]])
    assert.deepEqual(
      [...samples(text, 'llmesh_model_deactivated_info')],
      [['{model="other",model_version="2.0.0",reason="local-rollback"}', 1]],
    )
    c.active = []
    c.deactivated = {}
    text = await m.registry.metrics()
    assert.equal(samples(text, 'llmesh_model_active_info').size, 0)
    assert.equal(samples(text, 'llmesh_model_deactivated_info').size, 0)
  })

  test('rollout events become counters with bounded labels; unbinding stops them', async () => {
    const m = new RolloutMetrics()
    const c = new FakeController()
    const unbind = m.bindController(c)
    c.emit({ kind: 'activation', model: 'tiny', version: '1.1.0' })
    c.emit({ kind: 'local-rollback', model: 'tiny', version: '1.1.0', trigger: 'restart-loop' })
    c.emit({ kind: 'fleet-rollback', model: 'tiny', version: '1.2.0' })
    c.emit({ kind: 'fleet-rollback', model: 'tiny', version: '1.2.0' })
    c.emit({ kind: 'deactivation', model: 'tiny', version: '1.0.0', reason: 'release aborted' })
    c.emit({ kind: 'deactivation', model: 'tiny', version: '1.0.0', reason: 'some text from somewhere' })
    const text = await m.registry.metrics()
    assert.deepEqual(
      [...samples(text, 'llmesh_rollout_activations_total')],
      [['{model="tiny",model_version="1.1.0"}', 1]],
    )
    assert.deepEqual(
      [...samples(text, 'llmesh_rollout_local_rollbacks_total')],
      [['{model="tiny",model_version="1.1.0",trigger="restart-loop"}', 1]],
    )
    assert.deepEqual(
      [...samples(text, 'llmesh_rollout_fleet_rollbacks_total')],
      [['{model="tiny",model_version="1.2.0"}', 2]],
    )
    assert.deepEqual([...samples(text, 'llmesh_rollout_deactivations_total')].sort(), [
      ['{model="tiny",model_version="1.0.0",reason="aborted"}', 1],
      ['{model="tiny",model_version="1.0.0",reason="other"}', 1],
    ])
    unbind()
    assert.equal(c.listeners.size, 0)
  })

  test('deactivation reasons and release states', () => {
    assert.equal(deactivationReason('release aborted'), 'aborted')
    assert.equal(deactivationReason('failed on this device'), 'failed')
    assert.equal(deactivationReason('local rollback: probe-failure'), 'local-rollback')
    assert.equal(deactivationReason('anything else'), 'other')
    assert.deepEqual(releaseStates(release('1', 1, 'pilot', 0)), ['pilot', 'canary', 'paused', 'promoted', 'aborted'])
  })

  test('a paused release exports when its pause was issued, in seconds; others nothing', async () => {
    const cmd = (action: string, issued_at: number) => ({ id: `${action}${issued_at}`, action, issued_at })
    const paused = {
      ...release('1.1.0', 2, 'paused', 1),
      commands: [cmd('pause', 1000), cmd('resume', 2000), cmd('pause', 5000), cmd('pause', 7000)],
    }
    assert.equal(pausedSince(paused), 5000, 'the pause in force, not an earlier one nor a repeated one')
    assert.equal(pausedSince({ ...paused, state: 'canary' }), undefined)
    const m = new RolloutMetrics()
    const c = new FakeController()
    m.bindController(c)
    c.releases = [paused, release('1.0.0', 1, 'promoted', 2)]
    const s = samples(await m.registry.metrics(), 'llmesh_rollout_release_paused_since_timestamp_seconds')
    assert.deepEqual([...s], [['{model="tiny",model_version="1.1.0"}', 5]])
  })

  test('release errors per (model, version, code) and loop errors per loop, read at scrape time', async () => {
    const m = new RolloutMetrics()
    const counts = [{ model: 'tiny', version: '1.0.0+gguf-q4_0', code: 'ERR_RELEASE_CONFLICT', count: 3 }]
    const c = Object.assign(new FakeController(), { releaseErrorCounts: () => counts })
    m.bindController(c)
    const totals: Record<string, number> = { rollout: 0, gc: 2 }
    m.bindLoops({ totals: () => totals })
    let text = await m.registry.metrics()
    assert.deepEqual(
      [...samples(text, 'llmesh_rollout_release_errors_total')],
      [['{model="tiny",model_version="1.0.0+gguf-q4_0",code="ERR_RELEASE_CONFLICT"}', 3]],
    )
    assert.deepEqual(
      [...samples(text, 'llmesh_loop_errors_total')],
      [
        ['{loop="rollout"}', 0],
        ['{loop="gc"}', 2],
      ],
    )
    counts[0].count = 5
    totals.gc = 7
    text = await m.registry.metrics()
    assert.equal(samples(text, 'llmesh_rollout_release_errors_total').values().next().value, 5)
    assert.equal(samples(text, 'llmesh_loop_errors_total').get('{loop="gc"}'), 7)
    assert.equal(deactivationReason('release conflicted'), 'conflicted')
  })

  test('promtool check metrics finds nothing to lint', { skip: !existsSync(PROMTOOL) && 'no promtool' }, async () => {
    const m = new RolloutMetrics({ node: { peerId: 'p', role: 'node', fleet: 'f' } })
    const c = new FakeController()
    m.bindController(c)
    c.releases = [release('1.1.0', 2, 'canary', 1, 'pass')]
    c.active = [{ model: 'tiny', version: '1.0.0' }]
    c.emit({ kind: 'fleet-rollback', model: 'tiny', version: '1.1.0' })
    m.bindLoops({ totals: () => ({ 'anti-entropy': 1 }) })
    const text = await m.registry.metrics()
    const out = await new Promise<string>((done) => {
      const child = execFile(PROMTOOL, ['check', 'metrics'], (_err, stdout, stderr) => done(`${stdout}${stderr}`))
      child.stdin?.end(text)
    })
    assert.equal(out.trim(), '', out)
  })
})
