import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { LOCAL_MAX_RESTARTS, LOCAL_RESTART_WINDOW_MS } from '../../node/rollout/constants.ts'
import {
  DEFAULT_ROLLBACK_RULE,
  decideRollback,
  pruneTriggerEvents,
  type TriggerEvent,
} from '../../node/rollout/local-triggers.ts'

const MIN = 60_000
const now = 10 * 60 * MIN
const restarts = (...minsAgo: number[]): TriggerEvent[] => minsAgo.map((m) => ({ kind: 'restart', at: now - m * MIN }))

describe('decideRollback', () => {
  test('no events, or up to 3 restarts in 5 minutes: no rollback', () => {
    assert.deepEqual(decideRollback([], now), { rollback: false, restartsInWindow: 0 })
    const d = decideRollback(restarts(0.5, 1, 4.9), now)
    assert.equal(d.rollback, false)
    assert.equal(d.restartsInWindow, 3)
  })

  test('a 4th restart within 5 minutes triggers a rollback at the 4th', () => {
    const ev = restarts(4, 3, 2, 1)
    const d = decideRollback(ev, now)
    assert.equal(d.rollback, true)
    assert.ok(d.rollback && d.reason === 'restarts' && d.at === now - 1 * MIN)
  })

  test('restarts spread over more than 5 minutes do not', () => {
    assert.equal(decideRollback(restarts(9, 7, 5.5, 1), now).rollback, false)
    // exactly 5 minutes old falls out of the window
    assert.equal(decideRollback(restarts(5, 3, 2, 1), now).rollback, false)
  })

  for (const kind of ['load-failure', 'probe-failure', 'oom'] as const) {
    test(`a single ${kind} triggers a rollback, however old`, () => {
      const d = decideRollback([{ kind, at: now - 60 * MIN }], now)
      assert.ok(d.rollback && d.reason === kind && d.at === now - 60 * MIN)
    })
  }

  test('events after now are ignored', () => {
    assert.equal(decideRollback([{ kind: 'oom', at: now + 1 }], now).rollback, false)
    assert.equal(decideRollback([...restarts(1, 2, 3), { kind: 'restart', at: now + 5 }], now).rollback, false)
  })

  test('the earliest fatal event is reported; a custom rule applies', () => {
    const d = decideRollback(
      [
        { kind: 'oom', at: now - 1 * MIN },
        { kind: 'probe-failure', at: now - 2 * MIN },
      ],
      now,
    )
    assert.ok(d.rollback && d.reason === 'probe-failure')
    assert.equal(decideRollback(restarts(1, 2), now, { maxRestarts: 1, windowMs: 5 * MIN }).rollback, true)
  })

  test('property: rollback iff a fatal event or more than 3 restarts in the last 5 minutes', () => {
    const kinds = ['restart', 'load-failure', 'probe-failure', 'oom'] as const
    fc.assert(
      fc.property(
        fc.array(fc.record({ kind: fc.constantFrom(...kinds), at: fc.integer({ min: 0, max: now + MIN }) })),
        (events) => {
          const past = events.filter((e) => e.at <= now)
          const expected =
            past.some((e) => e.kind !== 'restart') ||
            past.filter((e) => e.kind === 'restart' && e.at > now - 5 * MIN).length > 3
          assert.equal(decideRollback(events, now).rollback, expected)
          // pruning never changes the decision
          assert.equal(decideRollback(pruneTriggerEvents(events, now), now).rollback, expected)
        },
      ),
    )
  })
})

test('the rule is stated once: its defaults are the rollout constants (>3 restarts in 5 min)', () => {
  assert.deepEqual(DEFAULT_ROLLBACK_RULE, { maxRestarts: LOCAL_MAX_RESTARTS, windowMs: LOCAL_RESTART_WINDOW_MS })
  assert.deepEqual([LOCAL_MAX_RESTARTS, LOCAL_RESTART_WINDOW_MS], [3, 5 * MIN])
})
