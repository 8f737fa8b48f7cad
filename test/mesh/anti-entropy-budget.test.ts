/**
 * Anti-entropy budgets between real nodes on loopback: a peer sending invalid control frames is
 * disconnected and loses gossip score after the limit; a peer past its frame budget has its round
 * cut and its next rounds refused.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { lpStream } from '@libp2p/utils'
import { PROTOCOL_ANTI_ENTROPY } from '../../protocols/constants.ts'
import { command, connect, makeFleet, startNode, type TestNode, waitFor } from './fixtures.ts'

const enc = new TextEncoder()

/** Opens an anti-entropy stream from `from` to `to` and writes one raw frame. */
async function rawRound(from: TestNode, to: TestNode, frame: Uint8Array): Promise<void> {
  const stream = await from.node.libp2p.dialProtocol(to.node.libp2p.peerId, PROTOCOL_ANTI_ENTROPY)
  const lp = lpStream(stream)
  await lp.write(frame)
  await lp.read().catch(() => {})
  stream.abort(new Error('done'))
}

function scoreOf(n: TestNode, peer: string): number {
  const pubsub = n.node.libp2p.services.pubsub as unknown as { score: { score(id: string): number } }
  return pubsub.score.score(peer)
}

describe('anti-entropy budgets on loopback', () => {
  const fleet = makeFleet()
  const nodes: TestNode[] = []
  after(async () => {
    await Promise.all(nodes.map((n) => n.node.stop()))
  })

  test('invalid control frames: one warning, then past the limit the peer is disconnected and its score drops', async () => {
    const honest = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000, budget: { invalid: 3 } } } })
    const hostile = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000 } } })
    nodes.push(honest, hostile)
    await connect(hostile, honest)
    await waitFor(() => honest.node.libp2p.getConnections(hostile.node.libp2p.peerId).length > 0, 10_000, 'connected')
    const frames = [enc.encode('{"have":"not a list"}'), new Uint8Array(100_000).fill(0x5b), enc.encode('nope')]
    for (const f of frames) await rawRound(hostile, honest, f)
    const ae = honest.node.antiEntropy
    await waitFor(() => ae.budgets.counters.disconnects === 1, 10_000, 'the hostile peer disconnected')
    assert.equal(ae.budgets.counters.invalidFrames, 3)
    await waitFor(
      () => honest.node.libp2p.getConnections(hostile.node.libp2p.peerId).length === 0,
      10_000,
      'no connection left',
    )
    // a behaviour penalty of 10: −10 × 10² (the score is cached for a moment)
    await waitFor(() => scoreOf(honest, hostile.id) <= -1000, 10_000, 'the hostile peer’s gossip score to drop')
  })

  test('past its frame budget a peer’s round is cut and its next round refused', async () => {
    const small = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000, budget: { frames: 3 } } } })
    const rich = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000 } } })
    nodes.push(small, rich)
    for (let i = 0; i < 5; i++) await rich.node.publish(await command(fleet))
    await connect(rich, small)
    const ae = small.node.antiEntropy
    await waitFor(() => ae.budgets.counters.overBudget.frames > 0, 10_000, 'the round cut at the budget')
    assert.ok(small.store.size < 5, `${small.store.size} messages got through a 3-frame budget`)
    // the next round of that peer is refused at once
    const peer = small.node.libp2p.peerId
    await assert.rejects(rich.node.antiEntropy.sync(peer))
    assert.ok(ae.budgets.counters.refusedRounds >= 1)
  })
})
