/**
 * Gossip ingest budgets between real nodes on loopback (node/mesh/gossip-budget.ts): a peer that
 * floods another key's unenrolled reports (refused as ERR_NOT_ENROLLED, which costs a forwarder no
 * score by itself) gets only its budget read; the rest are dropped unread, counted, and the peer's
 * score falls below the graylist threshold, and the receiver then bans it (node/mesh/peer-bans.ts):
 * its connections are closed and its dials refused, so a flood stops costing transport work. An
 * honest peer's report still goes through, and the honest peer stays connected. A peer sending its
 * OWN unenrolled reports pays a penalty per report and is banned under the budget (second test).
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createMeshMetrics } from '../../node/mesh/mesh-metrics.ts'
import { fleetTopic, TOPIC_HEALTH, TOPIC_ROLLOUT } from '../../protocols/index.ts'
import { connect, enrollment, healthReport, makeFleet, startNode, type TestNode, waitFor } from './fixtures.ts'

/** Messages the receiver reads of one peer per (long) interval in this test. */
const BUDGET = 20
const FLOOD = 120
/** gossipsub's default graylist threshold: below it a peer's RPCs are discarded unread. */
const GRAYLIST = -80

function scoreOf(n: TestNode, peer: string): number {
  const pubsub = n.node.libp2p.services.pubsub as unknown as { score: { score(id: string): number } }
  return pubsub.score.score(peer)
}

describe('gossip ingest budgets on loopback', () => {
  const fleet = makeFleet()
  const nodes: TestNode[] = []
  after(async () => {
    await Promise.all(nodes.map((n) => n.node.stop()))
  })

  test('a flooding peer gets its budget read, the rest dropped unread, and is graylisted; an honest peer is not', async () => {
    const quiet = { antiEntropy: { intervalMs: 3_600_000 } }
    const receiver = await startNode(fleet, {
      init: { ...quiet, gossipBudget: { frames: BUDGET, intervalMs: 600_000 }, peerBans: { checkMs: 200 } },
    })
    const flooder = await startNode(fleet, { init: quiet })
    const honest = await startNode(fleet, { init: quiet })
    nodes.push(receiver, flooder, honest)
    const health = fleetTopic(TOPIC_HEALTH, fleet.id)
    for (const n of [flooder, honest]) await connect(n, receiver)
    await waitFor(
      () =>
        [flooder, honest].every((n) => n.node.libp2p.services.pubsub.getSubscribers(health).length > 0) &&
        receiver.node.libp2p.services.pubsub.getSubscribers(fleetTopic(TOPIC_ROLLOUT, fleet.id)).length === 2,
      10_000,
      'subscriptions',
    )
    await receiver.node.publish(await enrollment(fleet, honest.id))
    await waitFor(() => honest.store.isEnrolled(honest.id), 10_000, 'the honest device enrolled at itself')

    // unenrolled reports straight into gossipsub (no local verification), as fast as it takes them
    const pubsub = flooder.node.libp2p.services.pubsub
    // signed by another unenrolled key, not the flooder's own: a peer passing on someone else's
    // refused reports pays no penalty for them (that is the second test), only for its budget
    const other = await generateKeyPair('Ed25519')
    for (let seq = 1; seq <= FLOOD; seq++) await pubsub.publish(health, await healthReport(fleet, other, seq))
    const notEnrolled = () => receiver.node.ingest.rejectedByCode.get('ERR_NOT_ENROLLED') ?? 0
    const gossip = receiver.node.gossip
    await waitFor(
      () => scoreOf(receiver, flooder.id) < GRAYLIST && gossip.counters.dropped > 0,
      10_000,
      'the flooder dropped and graylisted',
      () => ({ score: scoreOf(receiver, flooder.id), counters: gossip.counters, notEnrolled: notEnrolled() }),
    )
    assert.equal(notEnrolled(), BUDGET, 'only the budget was read and verified')
    assert.ok(gossip.counters.dropped <= FLOOD - BUDGET, JSON.stringify(gossip.counters))
    assert.equal(gossip.budget.drops.messages, gossip.counters.dropped)
    assert.equal(receiver.store.forDevice(peerIdFromPrivateKey(other).toString()).length, 0)
    const metrics = await createMeshMetrics(receiver.node).registry.metrics()
    assert.match(
      metrics,
      new RegExp(`llmesh_gossip_budget_drops_total\\{limit="messages"\\} ${gossip.budget.drops.messages}\n`),
    )
    assert.match(
      metrics,
      new RegExp(`llmesh_gossip_messages_total\\{outcome="dropped"\\} ${gossip.counters.dropped}\n`),
    )

    // the budget is per peer: an honest report still goes through the receiver
    await honest.node.publish(await healthReport(fleet, honest.key, 1))
    await waitFor(
      () => receiver.store.forDevice(honest.id).some((m) => m.type === 'HealthReport'),
      10_000,
      'the honest report at the receiver',
    )
    assert.ok(scoreOf(receiver, honest.id) >= 0, `honest score ${scoreOf(receiver, honest.id)}`)
    assert.equal(notEnrolled(), BUDGET, 'nothing more of the flooder was read')

    // the graylisted flooder is banned: disconnected, and its dials are refused for the ban's length
    await waitFor(
      () => receiver.node.bans.bans === 1 && !receiver.node.peers().includes(flooder.id),
      10_000,
      'the flooder banned and disconnected',
      () => ({ bans: receiver.node.bans.active(), peers: receiver.node.peers() }),
    )
    assert.ok(receiver.node.peers().includes(honest.id), 'the honest peer stays connected')
    assert.ok(receiver.node.bans.isBanned(flooder.id))
    assert.ok(!receiver.node.bans.isBanned(honest.id))
    // a banned peer cannot come back: the receiver refuses the connection once the handshake names it
    const refusedBefore = receiver.node.bans.refused
    await flooder.node.dial(receiver.node.multiaddrs()[0]).catch(() => undefined)
    await waitFor(
      () => receiver.node.bans.refused > refusedBefore && !receiver.node.peers().includes(flooder.id),
      10_000,
      'the banned flooder refused again',
    )
    const after = await createMeshMetrics(receiver.node).registry.metrics()
    assert.match(after, /llmesh_mesh_peer_bans_total 1\n/)
    assert.match(after, /llmesh_mesh_peers_banned 1\n/)
    assert.match(after, /llmesh_mesh_ban_refusals_total [1-9]/)
  })

  test('a peer sending its own unenrolled reports under the budget is penalised and banned; a newcomer is not', async () => {
    const quiet = { antiEntropy: { intervalMs: 3_600_000 } }
    const receiver = await startNode(fleet, { init: { ...quiet, peerBans: { checkMs: 200 } } })
    const stranger = await startNode(fleet, { init: quiet })
    const newcomer = await startNode(fleet, { init: quiet })
    nodes.push(receiver, stranger, newcomer)
    const health = fleetTopic(TOPIC_HEALTH, fleet.id)
    for (const n of [stranger, newcomer]) await connect(n, receiver)
    await waitFor(
      () => [stranger, newcomer].every((n) => n.node.libp2p.services.pubsub.getSubscribers(health).length > 0),
      10_000,
      'subscriptions',
    )
    // the newcomer: a report a second while its enrollment is on its way
    for (let seq = 1; seq <= 3; seq++) {
      await newcomer.node.libp2p.services.pubsub.publish(health, await healthReport(fleet, newcomer.key, seq))
      await new Promise((r) => setTimeout(r, 1000)) // the pace is the point: one report per second
    }
    // the stranger: 60 as fast as it can, far under the 1,000-message budget
    for (let seq = 1; seq <= 60; seq++) {
      await stranger.node.libp2p.services.pubsub.publish(health, await healthReport(fleet, stranger.key, seq))
    }
    await waitFor(
      () => receiver.node.bans.isBanned(stranger.id) && !receiver.node.peers().includes(stranger.id),
      10_000,
      'the stranger banned',
      () => ({ score: scoreOf(receiver, stranger.id), counters: receiver.node.gossip.counters }),
    )
    assert.equal(receiver.node.gossip.counters.dropped, 0, 'no budget was passed: the penalty did it')
    assert.ok(!receiver.node.bans.isBanned(newcomer.id), 'the newcomer is not banned')
    assert.ok(receiver.node.peers().includes(newcomer.id))
    assert.ok(scoreOf(receiver, newcomer.id) > GRAYLIST, `newcomer score ${scoreOf(receiver, newcomer.id)}`)
    assert.equal(receiver.store.forDevice(stranger.id).length, 0)
  })
})
