import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { canonicalBytes, fleetTopic, MAX_SIZE, TOPIC_HEALTH, TOPIC_ROLLOUT } from '../../protocols/index.ts'
import { withBadSignature } from '../helpers/index.ts'
import {
  command,
  connect,
  healthReport,
  makeFleet,
  startNode,
  type TestNode,
  waitFor,
  waitForMesh,
} from './fixtures.ts'

/** Publishes raw bytes through the attacker's gossipsub, bypassing its own verification. */
async function inject(attacker: TestNode, topic: string, bytes: Uint8Array): Promise<void> {
  await attacker.node.libp2p.services.pubsub.publish(topic, bytes)
}

function scoreOf(node: TestNode, peer: string): number {
  return (node.node.libp2p.services.pubsub as unknown as { getScore(p: string): number }).getScore(peer)
}

describe('gossip validators on loopback', () => {
  const fleet = makeFleet()
  const foreign = makeFleet(fleet.id)
  let attacker: TestNode
  let victim: TestNode
  let behind: TestNode
  const rollout = fleetTopic(TOPIC_ROLLOUT, fleet.id)
  const health = fleetTopic(TOPIC_HEALTH, fleet.id)

  before(async () => {
    attacker = await startNode(fleet)
    victim = await startNode(fleet)
    behind = await startNode(fleet)
    // attacker - victim - behind: anything "behind" gets must have been forwarded by the victim
    await connect(attacker, victim)
    await connect(behind, victim)
    await waitForMesh([attacker, victim, behind], rollout)
  })

  after(async () => {
    await Promise.all([attacker, victim, behind].map((n) => n.node.stop()))
  })

  test('forged, malformed and oversized messages are rejected, not stored, not forwarded; score drops', async () => {
    const before = scoreOf(victim, attacker.id)
    const forged = withBadSignature(await command(fleet)) // the fleet's key named, the signature wrong
    // signed by a key outside the trust root: this node cannot tell it from a key of a root it has
    // not rotated to yet, so it is Ignored (not stored, not forwarded, no score), not Rejected
    const unknown = await command(foreign)
    const ignoredBefore = victim.node.gossip.counters.ignored
    await inject(attacker, rollout, unknown)
    await waitFor(() => victim.node.gossip.counters.ignored > ignoredBefore, 10_000, 'unknown signer ignored')
    assert.equal(victim.node.gossip.counters.rejected, 0)
    const malformed = new TextEncoder().encode('{"kind":"operator","type":"OperatorCommand","bundle":')
    const big = await healthReport(fleet, attacker.key, 1)
    const env = JSON.parse(new TextDecoder().decode(big)) as Record<string, unknown>
    env.payload = `${env.payload as string}${'A'.repeat(MAX_SIZE.HealthReport)}`
    const oversized = canonicalBytes(env)
    await inject(attacker, rollout, forged)
    await inject(attacker, rollout, malformed)
    await inject(attacker, health, oversized)
    await waitFor(() => victim.node.gossip.counters.rejected >= 3, 10_000, 'three rejections')
    assert.equal(victim.store.size, 0)
    // a valid message sent afterwards arrives behind: had the bad ones been forwarded they would have arrived first
    await attacker.node.publish(await command(fleet))
    await waitFor(() => behind.store.size === 1, 10_000, 'valid message behind the victim')
    assert.equal(behind.node.gossip.counters.rejected, 0)
    assert.equal(behind.node.ingest.counters.rejected, 0)
    await waitFor(() => scoreOf(victim, attacker.id) < before, 5_000, 'attacker score to drop')
    assert.ok(scoreOf(victim, attacker.id) < 0, `attacker score ${scoreOf(victim, attacker.id)} should be negative`)
    assert.ok(scoreOf(victim, behind.id) >= 0)
  })

  test('the attacker is graylisted; a duplicate from an honest peer is ignored, not rejected', async () => {
    assert.ok(scoreOf(victim, attacker.id) < -80, 'below the default graylist threshold')
    const bytes = await command(fleet)
    await victim.node.publish(bytes)
    const rejected = victim.node.gossip.counters.rejected
    const ignored = victim.node.gossip.counters.ignored
    await inject(behind, rollout, bytes)
    await waitFor(() => victim.node.gossip.counters.ignored > ignored, 10_000, 'duplicate ignored')
    assert.equal(victim.node.gossip.counters.rejected, rejected)
    assert.ok(scoreOf(victim, behind.id) >= 0)
  })
})
