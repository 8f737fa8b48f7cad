/** Per-peer gossip ingest budgets (node/mesh/gossip-budget.ts). */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { describe, test } from 'node:test'
import { Worker } from 'node:worker_threads'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { silentLogger } from '../../node/logger.ts'
import { GOSSIP_BUDGET_PENALTY } from '../../node/mesh/constants.ts'
import { GossipBudget } from '../../node/mesh/gossip-budget.ts'

const peer = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

describe('gossip ingest budgets', () => {
  test("CPU is charged on the main thread's clock: another thread's work while a message waits costs its peer nothing", async () => {
    const b = new GossipBudget({ logger: silentLogger(), now: () => 0 }, { intervalMs: 1000, cpuMs: 100 })
    const p = await peer()
    const since = process.threadCpuUsage()
    // ~400 ms of CPU on a worker thread (the process clock counts it, the thread clock does not)
    const burn = new Worker('const t = Date.now(); while (Date.now() - t < 400) {}', { eval: true })
    await once(burn, 'exit')
    b.spent(p, since)
    assert.equal(b.admit(p, 1), true, "a worker thread's CPU was charged to the peer")
  })

  test('past the message, byte or CPU budget a peer is dropped (and penalised per drop) until the interval ends; others are not', async () => {
    let now = 0
    const penalties: Array<[string, number]> = []
    const b = new GossipBudget(
      { logger: silentLogger(), now: () => now, penalize: (p, n) => penalties.push([p.toString(), n]) },
      { intervalMs: 1000, frames: 3, bytes: 1000, cpuMs: 50 },
    )
    const [p, q] = [await peer(), await peer()]
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => b.admit(p, 10)),
      [true, true, true, false, false],
    )
    assert.equal(b.admit(q, 10), true, 'another peer has its own budget')
    assert.deepEqual(penalties, [
      [p.toString(), GOSSIP_BUDGET_PENALTY],
      [p.toString(), GOSSIP_BUDGET_PENALTY],
    ])
    now = 1000
    assert.equal(b.admit(p, 10), true, 'a new interval')
    assert.equal(b.admit(p, 991), false, 'bytes')
    now = 2000
    assert.equal(b.admit(p, 1), true)
    // 60 ms of CPU spent on its last message: the next one is dropped
    const since = process.threadCpuUsage()
    b.spent(p, { user: since.user - 60_000, system: since.system })
    assert.equal(b.admit(p, 1), false, 'cpu')
    assert.deepEqual(b.drops, { messages: 2, bytes: 1, cpu: 1 })
    assert.equal(penalties.length, 4)
  })

  test('the defaults leave an honest peer of a 1,000-device fleet far under the budget', async () => {
    const b = new GossipBudget({ logger: silentLogger(), now: () => 0 })
    const p = await peer()
    // a minute of reports of 1,000 devices, 4 KiB each, all in one interval: still admitted
    for (let i = 0; i < 1000; i++) assert.equal(b.admit(p, 4096), true, `report ${i}`)
    assert.equal(b.admit(p, 4096), false, 'the 1,001st message of the interval')
  })
})
