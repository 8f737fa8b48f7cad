import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { command, connect, enrollment, healthReport, makeFleet, startNode, type TestNode, waitFor } from './fixtures.ts'

describe('anti-entropy on loopback', () => {
  const fleet = makeFleet()
  const nodes: TestNode[] = []
  after(async () => {
    await Promise.all(nodes.map((n) => n.node.stop()))
  })

  test('a node that joins late catches up on everything, with the origin stopped', async () => {
    const seed = await startNode(fleet)
    const a = await startNode(fleet)
    nodes.push(seed, a)
    await connect(a, seed)
    const published: string[] = []
    for (let i = 0; i < 5; i++) published.push((await seed.node.publish(await command(fleet))).status)
    await seed.node.publish(await enrollment(fleet, a.id))
    // only enrolled devices' reports are stored
    await seed.node.publish(await enrollment(fleet, seed.id))
    await seed.node.publish(await healthReport(fleet, seed.key, 1))
    await waitFor(() => a.store.size === 8, 10_000, 'a to receive everything')
    await seed.node.stop()
    const late = await startNode(fleet)
    nodes.push(late)
    const got: string[] = []
    late.store.on('message', (m) => got.push(m.type))
    await connect(late, a)
    await waitFor(() => late.store.size === 8, 10_000, 'late node to catch up')
    assert.deepEqual(new Set(late.store.syncDigests()), new Set(a.store.syncDigests()))
    assert.ok(late.store.isEnrolled(a.id))
    // dependencies first: commands, then enrollments and health by their order
    assert.equal(got.filter((t) => t === 'OperatorCommand').length, 5)
    assert.ok(late.node.antiEntropy.counters.received + a.node.antiEntropy.counters.received >= 0)
  })

  test('a round also sends what the responder lacks, and a repeated round sends nothing', async () => {
    const x = await startNode(fleet)
    const y = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000 } } })
    nodes.push(x, y)
    await x.node.publish(await command(fleet))
    await y.node.publish(await command(fleet))
    await connect(x, y)
    await waitFor(() => x.store.size === 2 && y.store.size === 2, 10_000, 'both to hold both')
    const peer = x.node.libp2p.getConnections()[0].remotePeer
    const r = await x.node.antiEntropy.sync(peer)
    assert.deepEqual([r.received, r.sent], [0, 0])
  })

  test('a message whose ingest throws is a loop error: the round goes on with the next one', async () => {
    const src = await startNode(fleet)
    const dst = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000 } } })
    nodes.push(src, dst)
    for (let i = 0; i < 5; i++) await src.node.publish(await command(fleet))
    await src.node.publish(await enrollment(fleet, dst.id))
    // a buggy listener (any service hooked on the store) throws on every command it is told of
    dst.store.on('command', () => {
      throw new Error('listener bug')
    })
    const rounds: number[] = []
    dst.node.antiEntropy.on('sync', (r) => rounds.push(r.received + r.rejected))
    await connect(src, dst)
    await connect(dst, src)
    // the first round that completes brought everything: it did not stop at the first fault
    await waitFor(() => rounds.length > 0, 15_000, 'a round to complete')
    assert.equal(dst.store.size, 6)
    assert.ok(dst.store.isEnrolled(dst.id))
    assert.equal(dst.node.antiEntropy.counters.errors, 5)
    assert.equal(dst.node.antiEntropy.loops.totals()['anti-entropy'], 5)
    assert.deepEqual(
      dst.node.antiEntropy.loops.failing().map((f) => [f.loop, f.item, f.count]),
      [['anti-entropy', 'ingest', 5]],
    )
  })
})
