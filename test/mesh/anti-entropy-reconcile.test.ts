/**
 * Anti-entropy version 2 between real nodes on loopback: range-based reconciliation brings two
 * stores holding many shared messages to their union in a few round trips, and a node that only
 * speaks version 1 (not yet upgraded) is still reconciled with, over version 1.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { PROTOCOL_ANTI_ENTROPY } from '../../protocols/constants.ts'
import { command, connect, makeFleet, startNode, type TestNode, waitFor } from './fixtures.ts'

const QUIET = { init: { antiEntropy: { intervalMs: 3_600_000 } } }

describe('anti-entropy reconciliation on loopback', () => {
  const fleet = makeFleet()
  const nodes: TestNode[] = []
  after(async () => {
    await Promise.all(nodes.map((n) => n.node.stop()))
  })

  /** Two quiet nodes, not connected: `shared` messages on both, `own` more on each alone. */
  async function pair(shared: number, own: number): Promise<[TestNode, TestNode]> {
    const x = await startNode(fleet, QUIET)
    const y = await startNode(fleet, QUIET)
    nodes.push(x, y)
    for (let i = 0; i < shared; i++) {
      const m = await command(fleet)
      await x.node.publish(m)
      await y.node.publish(m)
    }
    for (let i = 0; i < own; i++) {
      await x.node.publish(await command(fleet))
      await y.node.publish(await command(fleet))
    }
    return [x, y]
  }

  test('300 shared messages and 3 of their own each: one round brings both to the union, in a few round trips', async () => {
    const [x, y] = await pair(300, 3)
    assert.deepEqual([x.store.size, y.store.size], [303, 303])
    const rounds: Array<{ received: number; sent: number; roundTrips?: number }> = []
    x.node.antiEntropy.on('sync', (r) => rounds.push(r))
    await connect(x, y)
    await waitFor(() => rounds.length > 0, 15_000, 'the round on connect')
    assert.deepEqual([rounds[0].received, rounds[0].sent], [3, 3])
    assert.ok((rounds[0].roundTrips ?? 99) <= 3, `${rounds[0].roundTrips} round trips`)
    await waitFor(() => y.store.size === 306, 10_000, 'y to hold the union')
    assert.equal(x.store.size, 306)
    assert.deepEqual(new Set(x.store.syncDigests()), new Set(y.store.syncDigests()))
    assert.equal(x.node.antiEntropy.versions.v2, 1)
    assert.equal(y.node.antiEntropy.versions.v2, 1)
    // equal sets: one round trip, nothing sent
    const again = await x.node.antiEntropy.sync(y.node.libp2p.peerId)
    assert.deepEqual([again.received, again.sent, again.roundTrips], [0, 0, 1])
  })

  test('an empty peer catches up over rounds, at most a round’s worth of messages each (dependencies first)', async () => {
    const x = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000, maxMessages: 10 } } })
    const empty = await startNode(fleet, QUIET)
    nodes.push(x, empty)
    for (let i = 0; i < 25; i++) await x.node.publish(await command(fleet))
    const sent: number[] = []
    x.node.antiEntropy.on('sync', (r) => sent.push(r.sent))
    await connect(x, empty)
    await waitFor(() => sent.length === 1, 15_000, 'the round on connect')
    const peer = empty.node.libp2p.peerId
    // each round is one 'sync' event
    await x.node.antiEntropy.sync(peer)
    await x.node.antiEntropy.sync(peer)
    assert.deepEqual(sent, [10, 10, 5])
    await waitFor(() => empty.store.size === 25, 10_000, 'the empty peer to hold everything')
  })

  test('a peer that speaks only version 1 is reconciled with over version 1', async () => {
    const [x, old] = await pair(20, 2)
    // an older node: no handler for version 2
    await old.node.libp2p.unhandle(PROTOCOL_ANTI_ENTROPY)
    const rounds: Array<{ received: number; sent: number }> = []
    x.node.antiEntropy.on('sync', (r) => rounds.push(r))
    await connect(x, old)
    await waitFor(() => rounds.length > 0, 15_000, 'the round on connect')
    assert.deepEqual([rounds[0].received, rounds[0].sent], [2, 2])
    await waitFor(() => old.store.size === 24 && x.store.size === 24, 10_000, 'both to hold the union')
    assert.deepEqual([x.node.antiEntropy.versions.v1, x.node.antiEntropy.versions.v2], [1, 0])
  })
})
