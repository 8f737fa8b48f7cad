/**
 * Per-peer CPU budgets charge this thread's CPU only (node/mesh/cpu-clock.ts): while another
 * thread of the process burns CPU, a peer whose messages cost this thread nothing is charged
 * nothing. With process.cpuUsage() (the process's CPU) the same window was charged the other
 * thread's work, so a loaded node could put an honest peer over budget and ban it.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import { cpuMsSince, cpuNow } from '../../node/mesh/cpu-clock.ts'
import { waitFor } from '../helpers/index.ts'

test('the budget clock counts this thread, not a busy worker thread beside it', async (t) => {
  const burner = new Worker('for (;;) {}', { eval: true })
  t.after(() => burner.terminate())
  await new Promise((ok) => burner.once('online', ok))
  const since = cpuNow()
  const processSince = process.cpuUsage()
  // idle here until the other thread has burnt at least 150 ms of CPU (however loaded the machine)
  await waitFor(
    async () => {
      await sleep(20)
      const d = process.cpuUsage(processSince)
      return (d.user + d.system) / 1000 >= 150
    },
    { timeoutMs: 20_000, what: 'the worker thread to burn 150 ms of CPU' },
  )
  const charged = cpuMsSince(since)
  assert.ok(charged < 60, `this thread was charged ${charged.toFixed(1)} ms while it only waited`)
})

test('the budget clock counts the work of this thread', () => {
  const since = cpuNow()
  const end = performance.now() + 50
  let x = 0
  while (performance.now() < end) x++
  assert.ok(x > 0)
  // wall time 50 ms; CPU at least a little of it even on a loaded machine, never more than wall
  const charged = cpuMsSince(since)
  assert.ok(charged > 1 && charged < 50 + 20, `charged ${charged.toFixed(1)} ms for a 50 ms busy loop`)
})
