/** The inference worker's restart policy: doubling backoff with a cap, reset after a quiet spell. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decideRestart, initialRestartBook, shouldRestart } from '../../node/inference/restart-policy.ts'

const cfg = { restartBackoffMs: 100, maxRestartBackoffMs: 800 }

test('a crash loop doubles the delay up to the cap; every restart is counted', () => {
  let book = initialRestartBook(cfg)
  const delays: number[] = []
  let now = 1_000_000
  for (let i = 0; i < 6; i++) {
    const d = decideRestart(book, now, cfg)
    delays.push(d.delayMs)
    book = d.book
    now += d.delayMs + 10 // crashes again right after coming back
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 800, 800])
  assert.equal(book.count, 6)
})

test('after a quiet spell longer than twice the cap, the delay starts small again', () => {
  let book = initialRestartBook(cfg)
  for (let i = 0, now = 10_000; i < 4; i++, now += 50) book = decideRestart(book, now, cfg).book
  assert.equal(book.backoffMs, 800)
  // within 2 × cap of the last restart: still backed off
  assert.equal(decideRestart(book, book.lastAt + 1600, cfg).delayMs, 800)
  // past it: an isolated crash restarts quickly
  assert.equal(decideRestart(book, book.lastAt + 1601, cfg).delayMs, 100)
})

test('only an exit we did not ask for, while serving, with a model wanted, restarts', () => {
  assert.equal(shouldRestart('crash', 'ready', true), true)
  assert.equal(shouldRestart('oom', 'ready', true), true)
  assert.equal(shouldRestart('stopped', 'ready', true), false)
  assert.equal(shouldRestart('crash', 'loading', true), false)
  assert.equal(shouldRestart('crash', 'ready', false), false)
})
