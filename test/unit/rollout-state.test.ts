import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { canonicalJson, sha256Hex } from '../../protocols/encoding.ts'
import { merge } from '../../protocols/rollout/merge.ts'
import {
  addCommand,
  addVerdict,
  type CommandFact,
  deriveView,
  newRolloutState,
  type RolloutState,
  rolloutStatus,
  type VerdictFact,
} from '../../protocols/rollout/state.ts'
import { MIN, peer, T0 } from './rollout-fixtures.ts'

const STAGES = ['pilot', 'canary', 'wide', 'full']
const empty = () => newRolloutState('m@2.0.0', STAGES, T0)

const cmd = (id: string, action: CommandFact['action'], t: number, to_stage?: string): CommandFact =>
  to_stage ? { id, action, issued_at: t, to_stage } : { id, action, issued_at: t }
// A digest names one content: derive it from every field.
const verdict = (n: number, stage: number, outcome: 'promote' | 'abort', t: number, start: number): VerdictFact => ({
  digest: sha256Hex(`${n}/${stage}/${outcome}/${t}/${start}`),
  device: peer(n % 5),
  stage,
  outcome,
  decided_at: t,
  window_start: start,
})

type Msg = { c: CommandFact } | { v: VerdictFact }
const apply = (s: RolloutState, m: Msg) => ('c' in m ? addCommand(s, m.c) : addVerdict(s, m.v))

const msgArb: fc.Arbitrary<Msg> = fc.oneof(
  fc
    .record({
      id: fc.integer({ min: 0, max: 30 }),
      action: fc.constantFrom('pause', 'resume', 'abort', 'promote', 'pause', 'resume') as fc.Arbitrary<
        CommandFact['action']
      >,
      t: fc.integer({ min: 0, max: 100 }),
      to: fc.option(fc.constantFrom('canary', 'wide', 'full', 'nope'), { nil: undefined }),
    })
    .map(({ id, action, t, to }) => ({
      c: cmd(`c${id.toString(16).padStart(16, '0')}`, action, T0 + t * MIN, action === 'promote' ? to : undefined),
    })),
  fc
    .record({
      n: fc.integer({ min: 0, max: 200 }),
      stage: fc.integer({ min: 0, max: 3 }),
      outcome: fc.constantFrom('promote', 'promote', 'promote', 'abort') as fc.Arbitrary<'promote' | 'abort'>,
      t: fc.integer({ min: 0, max: 100 }),
      w: fc.integer({ min: 0, max: 20 }),
    })
    .map(({ n, stage, outcome, t, w }) => ({
      v: verdict(n, stage, outcome, T0 + t * MIN, T0 + Math.max(0, t - w) * MIN),
    })),
)

describe('rollout state semilattice', () => {
  test('replicas fed random orders, duplicates and delays of one message set agree', () => {
    fc.assert(
      fc.property(
        fc.array(msgArb, { maxLength: 30 }),
        fc.array(fc.array(fc.nat(), { maxLength: 60 }), { minLength: 2, maxLength: 6 }),
        (msgs, orders) => {
          // Each replica receives the messages in its own order, some twice; then they gossip pairwise.
          const replicas = orders.map((order) => {
            let s = empty()
            const seq = [...order.map((i) => msgs[i % Math.max(1, msgs.length)]), ...msgs].filter(Boolean)
            for (const m of seq) s = apply(s, m)
            return s
          })
          const views = replicas.map((r) => canonicalJson(deriveView(r)))
          for (const v of views) assert.equal(v, views[0])
          const joined = replicas.reduce(merge)
          assert.equal(canonicalJson(deriveView(joined)), views[0])
          assert.equal(canonicalJson(joined), canonicalJson(merge(replicas[0], replicas[0])))
        },
      ),
      { numRuns: 300 },
    )
  })

  test('partial delivery then anti-entropy: merging in any order converges', () => {
    fc.assert(
      fc.property(fc.array(msgArb, { maxLength: 25 }), fc.array(fc.nat(5), { maxLength: 25 }), (msgs, who) => {
        const reps = Array.from({ length: 6 }, empty)
        msgs.forEach((m, i) => {
          reps[(who[i] ?? i) % 6] = apply(reps[(who[i] ?? i) % 6], m)
        })
        const a = reps.reduce(merge)
        const b = [...reps].reverse().reduce(merge)
        const c = merge(merge(reps[0], reps[3]), merge(reps[5], merge(reps[1], merge(reps[2], reps[4]))))
        assert.equal(canonicalJson(a), canonicalJson(b))
        assert.equal(canonicalJson(a), canonicalJson(c))
        assert.equal(canonicalJson(merge(a, a)), canonicalJson(a))
        let all = empty()
        for (const m of msgs) all = apply(all, m)
        assert.deepEqual(deriveView(a), deriveView(all))
      }),
      { numRuns: 300 },
    )
  })

  test('abort absorbs: adding facts after an abort never leaves aborted', () => {
    fc.assert(
      fc.property(fc.array(msgArb, { maxLength: 20 }), (msgs) => {
        let s = addCommand(empty(), cmd('a'.repeat(16), 'abort', T0))
        for (const m of msgs) {
          s = apply(s, m)
          assert.equal(deriveView(s).phase, 'aborted')
        }
      }),
    )
  })

  test('verdicts walk the stages; stage start times follow the decisions', () => {
    let s = empty()
    assert.deepEqual(rolloutStatus(s), { phase: 'rolling', stage: 0, stageName: 'pilot', status: 'pilot' })
    s = addVerdict(s, verdict(1, 0, 'promote', T0 + 10 * MIN, T0))
    assert.equal(rolloutStatus(s).status, 'canary')
    assert.equal(deriveView(s).stageStartedAt[1], T0 + 10 * MIN)
    // A canary verdict whose window started before the canary did is not adopted.
    const early = addVerdict(s, verdict(2, 1, 'promote', T0 + 30 * MIN, T0 + 5 * MIN))
    assert.equal(rolloutStatus(early).status, 'canary')
    // A verdict for a stage not reached yet is not adopted either.
    assert.equal(rolloutStatus(addVerdict(empty(), verdict(3, 1, 'promote', T0 + 30 * MIN, T0 + 20 * MIN))).stage, 0)
    s = addVerdict(s, verdict(4, 1, 'promote', T0 + 30 * MIN, T0 + 10 * MIN))
    s = addVerdict(s, verdict(5, 2, 'promote', T0 + 50 * MIN, T0 + 30 * MIN))
    assert.deepEqual(rolloutStatus(s), { phase: 'promoted', stage: 3, stageName: 'full', status: 'promoted' })
    // Late abort evidence at the last stage still aborts.
    s = addVerdict(s, verdict(6, 3, 'abort', T0 + 60 * MIN, T0 + 50 * MIN))
    assert.equal(rolloutStatus(s).status, 'aborted')
    assert.equal(deriveView(s).abortedBy, `verdict:${verdict(6, 3, 'abort', T0 + 60 * MIN, T0 + 50 * MIN).digest}`)
  })

  test('pause blocks promotion until a later resume (LWW by issued_at, id)', () => {
    let s = addCommand(empty(), cmd('1'.repeat(16), 'pause', T0 + 5 * MIN))
    s = addVerdict(s, verdict(1, 0, 'promote', T0 + 10 * MIN, T0))
    assert.equal(rolloutStatus(s).status, 'paused')
    assert.equal(rolloutStatus(s).stage, 0)
    // A resume issued before the pause does not lift it.
    assert.equal(rolloutStatus(addCommand(s, cmd('2'.repeat(16), 'resume', T0 + 4 * MIN))).status, 'paused')
    s = addCommand(s, cmd('3'.repeat(16), 'resume', T0 + 12 * MIN))
    assert.equal(rolloutStatus(s).status, 'pilot', 'the verdict decided during the pause stays ignored')
    s = addVerdict(s, verdict(2, 0, 'promote', T0 + 13 * MIN, T0))
    assert.equal(rolloutStatus(s).status, 'canary')
  })

  test('operator promote: next, named stage, full; unknown name ignored', () => {
    const s = empty()
    assert.equal(rolloutStatus(addCommand(s, cmd('1'.repeat(16), 'promote', T0 + MIN))).status, 'canary')
    assert.equal(rolloutStatus(addCommand(s, cmd('1'.repeat(16), 'promote', T0 + MIN, 'wide'))).status, 'wide')
    assert.equal(rolloutStatus(addCommand(s, cmd('1'.repeat(16), 'promote', T0 + MIN, 'full'))).status, 'promoted')
    assert.equal(rolloutStatus(addCommand(s, cmd('1'.repeat(16), 'promote', T0 + MIN, 'nope'))).status, 'pilot')
    const paused = addCommand(s, cmd('2'.repeat(16), 'pause', T0))
    const p = addCommand(paused, cmd('1'.repeat(16), 'promote', T0 + MIN))
    assert.deepEqual(rolloutStatus(p), { phase: 'paused', stage: 1, stageName: 'canary', status: 'paused' })
  })

  test('merge refuses states of different releases', () => {
    assert.throws(() => merge(empty(), newRolloutState('m@3.0.0', STAGES, T0)), /cannot merge/)
  })
})
