/** Per-peer anti-entropy budgets (node/mesh/anti-entropy-budget.ts). */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PeerBudgets } from '../../node/mesh/anti-entropy-budget.ts'

describe('anti-entropy budgets', () => {
  test('frames, bytes and CPU per interval: past one the peer is blocked until the interval ends', () => {
    let now = 0
    const b = new PeerBudgets({ intervalMs: 1000, frames: 3, bytes: 1000, cpuMs: 50, invalid: 2 }, () => now)
    assert.equal(b.charge('p', 10), undefined)
    assert.equal(b.charge('p', 10), undefined)
    assert.equal(b.charge('p', 10), undefined)
    assert.equal(b.charge('p', 10), 'frames')
    assert.equal(b.blocked('p'), true)
    assert.equal(b.blocked('q'), false, 'another peer has its own budget')
    now = 1000
    assert.equal(b.blocked('p'), false, 'a new interval')
    assert.equal(b.charge('p', 1001), 'bytes')
    now = 2000
    b.spent('p', 60)
    assert.equal(b.charge('p', 1), 'cpu')
    assert.deepEqual(b.counters.overBudget, { frames: 1, bytes: 1, cpu: 1 })
    assert.equal(b.counters.refusedRounds, 1)
  })

  test('the Nth invalid frame of an interval says disconnect, once; one warning per peer per interval', () => {
    let now = 0
    const b = new PeerBudgets({ intervalMs: 1000, invalid: 3 }, () => now)
    assert.deepEqual([b.invalid('p'), b.invalid('p'), b.invalid('p'), b.invalid('p')], [false, false, true, false])
    assert.equal(b.counters.disconnects, 1)
    assert.equal(b.counters.invalidFrames, 4)
    assert.equal(b.blocked('p'), true)
    assert.deepEqual([b.warnOnce('p'), b.warnOnce('p'), b.warnOnce('q')], [true, false, true])
    now = 1000
    assert.equal(b.warnOnce('p'), true)
    assert.equal(b.invalid('p'), false, 'counted again from zero')
  })
})
