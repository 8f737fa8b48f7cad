/**
 * Over the mesh, a rotation-blocking attempt fails: a peer gossips 31 junk copies of the first
 * rotation envelope's payload to a device still on root v1; they are rejected as invalid (the
 * attacker's gossip score drops), and the device adopts root v2 in its first anti-entropy round
 * with a node that holds the rotation. And the other side of a rotation: a peer already on v2
 * forwards a command signed by the new key to a device still on v1; the device refuses it
 * (ERR_UNKNOWN_SIGNER: its root does not hold that key yet) without charging the honest forwarder.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier, type FleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { MeshNode } from '../../node/mesh/mesh-node.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import {
  canonicalBytes,
  createOperatorSigner,
  fleetTopic,
  fromBase64,
  generateOperatorKey,
  nextTrustRoot,
  signTrustRoot,
  TOPIC_RELEASES,
  TOPIC_ROLLOUT,
  type TrustRoot,
  toBase64,
} from '../../protocols/index.ts'
import { command, connect, makeFleet, type TestFleet, waitFor } from './fixtures.ts'

interface Node {
  node: MeshNode
  store: MessageStore
  verify: FleetVerifier
  id: string
}

async function start(fleet: TestFleet, trust: TrustRoot, chain?: Uint8Array[][]): Promise<Node> {
  const key = await generateKeyPair('Ed25519')
  const logger = silentLogger()
  const store = new MessageStore({ logger }, {})
  const verify = createFleetVerifier({ trust, chain, store })
  const node = new MeshNode(
    { store, verify, logger },
    {
      fleet: fleet.id,
      psk: fleet.psk,
      privateKey: key,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      mdns: false,
      antiEntropy: { intervalMs: 3_600_000 },
    },
  )
  await node.start()
  return { node, store, verify, id: peerIdFromPrivateKey(key).toString() }
}

function junkCopy(wire: Uint8Array, i: number): Uint8Array {
  const env = JSON.parse(Buffer.from(wire).toString('utf8'))
  const sig = fromBase64(env.bundle.dsseEnvelope.signatures[0].sig)
  sig[sig.length - 1 - (i % 8)] ^= (i >> 3) + 1
  env.bundle.dsseEnvelope.signatures[0].sig = toBase64(sig)
  return canonicalBytes(env)
}

/** A fleet on root v1 and its rotation to v2 (a new key), signed by the old and the new key. */
async function rotation(id: string) {
  const fleet = makeFleet(id)
  const v1 = fleet.trust
  const [selfSigned] = await signTrustRoot(v1, [fleet.signer])
  const s2 = createOperatorSigner(generateOperatorKey().privateKeyPem)
  const v2 = nextTrustRoot(v1, [s2.key], Date.now())
  const [byOld, byNew] = await signTrustRoot(v2, [fleet.signer, s2])
  return { fleet, v1, v2, s2, selfSigned, byOld, byNew }
}

/** Waits until `from` sees `to` subscribed to `topic` (so what `from` publishes reaches `to`). */
const subscribed = (from: Node, to: Node, topic: string) =>
  waitFor(
    () => from.node.libp2p.services.pubsub.getSubscribers(topic).some((p) => p.toString() === to.id),
    10_000,
    'subscriptions',
  )

const scoreOf = (n: Node, peer: string): number =>
  (n.node.libp2p.services.pubsub as unknown as { getScore(p: string): number }).getScore(peer)

describe('rotation blocking over the mesh', () => {
  const nodes: Node[] = []
  after(async () => {
    await Promise.all(nodes.map((n) => n.node.stop()))
  })

  test('junk rotation envelopes cost the attacker its score; the device adopts v2 at first delivery', async () => {
    const { fleet, v1, v2, s2, selfSigned, byOld, byNew } = await rotation('rot-block')

    const device = await start(fleet, v1)
    const attacker = await start(fleet, v1)
    nodes.push(device, attacker)
    await connect(attacker, device)
    const topic = fleetTopic(TOPIC_RELEASES, fleet.id)
    await subscribed(attacker, device, topic)
    for (let i = 0; i < 31; i++) await attacker.node.libp2p.services.pubsub.publish(topic, junkCopy(byOld, i))
    // every junk copy is refused: validated and rejected, or, once the attacker's score is below
    // gossipsub's graylist threshold (-80, two invalid messages at weight -20), dropped unread; on
    // a loaded machine a heartbeat can fall between the copies and graylist the attacker mid-stream
    const GRAYLIST = -80
    await waitFor(
      () =>
        device.node.gossip.counters.rejected >= 31 ||
        (device.node.gossip.counters.rejected >= 2 && scoreOf(device, attacker.id) <= GRAYLIST),
      20_000,
      'junk rejected',
      () => ({ rejected: device.node.gossip.counters.rejected, score: scoreOf(device, attacker.id) }),
    )
    assert.equal(device.node.gossip.counters.ignored, 0, 'junk is invalid, not "waiting for co-signatures"')
    await waitFor(() => scoreOf(device, attacker.id) < 0, 10_000, 'attacker score to drop')
    assert.equal(device.verify.trust().version, 1)

    // a node whose fleet directory holds the rotation (chain v1 → v2) hands it on
    const seed = await start(fleet, v2, [[selfSigned], [byOld, byNew]])
    nodes.push(seed)
    await seed.node.publish(byOld)
    await seed.node.publish(byNew)
    assert.equal(seed.store.list('TrustRoot').length, 2)
    const versionAtFirstRound = new Promise<number>((resolve) => {
      device.node.antiEntropy.on('sync', (r) => {
        if (r.peer === seed.id) resolve(device.verify.trust().version)
      })
    })
    await connect(device, seed)
    assert.equal(await versionAtFirstRound, 2, 'adopted in the first round with the seed')
    assert.deepEqual(
      device.verify.trust().keys.map((k) => k.keyid),
      [s2.keyid],
    )
  })

  test('a command signed by a rotated key costs its forwarder nothing at a device still on the old root', async () => {
    const { fleet, v1, v2, s2, selfSigned, byOld, byNew } = await rotation('rot-forward')

    const device = await start(fleet, v1)
    // on v2 through its fleet directory's chain; its store does not hold the rotation envelopes,
    // so anti-entropy does not hand the device the new root during this test
    const rotated = await start(fleet, v2, [[selfSigned], [byOld, byNew]])
    nodes.push(device, rotated)
    await connect(rotated, device)
    const topic = fleetTopic(TOPIC_ROLLOUT, fleet.id)
    await subscribed(rotated, device, topic)
    const cmd = await command(fleet, Date.now(), s2)
    await rotated.node.publish(cmd)
    assert.equal(rotated.store.list('OperatorCommand').length, 1, 'valid under v2')
    await waitFor(
      () => device.node.gossip.counters.ignored + device.node.gossip.counters.rejected >= 1,
      20_000,
      'the command reaches the device and is refused',
      () => device.node.gossip.counters,
    )
    assert.equal(device.node.gossip.counters.rejected, 0, 'refused as Ignore, not Reject')
    assert.equal(device.store.list('OperatorCommand').length, 0)
    assert.equal(device.verify.trust().version, 1)
    // the score is cached for a heartbeat: read it after two more heartbeats have passed
    const pubsub = device.node.libp2p.services.pubsub
    for (let i = 0; i < 2; i++)
      await new Promise<void>((resolve) =>
        pubsub.addEventListener('gossipsub:heartbeat', () => resolve(), { once: true }),
      )
    assert.ok(scoreOf(device, rotated.id) >= 0, `forwarder's score ${scoreOf(device, rotated.id)}`)
  })
})
