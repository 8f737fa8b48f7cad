/**
 * WAN transports on loopback (mDNS off), real libp2p: a relay server (`relayServer`) that listens
 * on WebSockets only, a node "behind NAT" that listens on nothing but `/p2p-circuit` (so no one can
 * dial it directly), and a third node that reaches it through the relay. Checks the WebSocket
 * links, the reservation, that the fleet's protocols (gossipsub, anti-entropy) run on the relayed
 * (limited) connection, that relayed links count as WAN links, and that relaying is off by default.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { scaled } from '../helpers/index.ts'
import { makeFleet, startNode, type TestNode, waitFor } from './fixtures.ts'

describe('WAN links: WebSockets and circuit relay v2 on loopback', () => {
  const fleet = makeFleet()
  let relay: TestNode
  let natted: TestNode
  let other: TestNode

  before(async () => {
    relay = await startNode(fleet, { init: { relayServer: true, listen: ['/ip4/127.0.0.1/tcp/0/ws'] } })
    natted = await startNode(fleet, { init: { listen: ['/p2p-circuit'] } })
    other = await startNode(fleet, { init: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
  })

  after(async () => {
    await Promise.all([other, natted, relay].map((n) => n?.node.stop()))
  })

  test('a node behind NAT is reached through a relay dialed over /ws; fleet protocols run on the relayed link', async () => {
    const wsAddr = relay.node.multiaddrs().find((a) => a.includes('/ws/'))
    assert.ok(wsAddr !== undefined, relay.node.multiaddrs().join(' '))
    await natted.node.dial(wsAddr)
    await other.node.dial(wsAddr)
    for (const n of [natted, other]) {
      const conn = n.node.libp2p.getConnections().find((c) => c.remotePeer.toString() === relay.id)
      assert.match(String(conn?.remoteAddr), /\/tcp\/\d+\/ws/, 'dialed over WebSockets')
    }
    // the node behind NAT reserves a slot and advertises a circuit address through the relay
    await waitFor(
      () => natted.node.multiaddrs().some((a) => a.includes('/p2p-circuit')),
      scaled(20_000),
      'a relay reservation',
    )
    assert.equal(relay.node.libp2p.services.relay?.reservations.size, 1)
    // no direct address: only the relay reaches it
    assert.ok(
      natted.node.multiaddrs().every((a) => a.includes('/p2p-circuit')),
      natted.node.multiaddrs().join(' '),
    )
    await other.node.dial(`${wsAddr}/p2p-circuit/p2p/${natted.id}`)
    const conn = other.node.libp2p.getConnections().find((c) => c.remotePeer.toString() === natted.id)
    assert.ok(conn !== undefined)
    assert.match(conn.remoteAddr.toString(), /\/p2p-circuit/)
    assert.ok(conn.limits !== undefined, 'the relay bounds the relayed connection (bytes, duration)')
    assert.equal(other.node.isWan(conn), true, 'a relayed link is a WAN link (--wan-rate applies)')
    assert.equal(other.node.isWan({ remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1') }), false)
    // gossipsub runs on the relayed connection: each is the other's pubsub peer
    await waitFor(
      () =>
        other.node.libp2p.services.pubsub.getPeers().some((p) => p.toString() === natted.id) &&
        natted.node.libp2p.services.pubsub.getPeers().some((p) => p.toString() === other.id),
      scaled(20_000),
      'gossipsub peers over the relay',
    )
    // an anti-entropy round runs over it
    const round = await other.node.antiEntropy.sync(natted.node.libp2p.peerId)
    assert.equal(round.peer, natted.id)
    // on the one relayed connection: no second circuit through the relay for each round
    assert.deepEqual(
      other.node.libp2p.getConnections(natted.node.libp2p.peerId).map((c) => c.id),
      [conn.id],
    )
  })

  test('relaying is off by default: a plain node refuses to relay', async () => {
    assert.equal(other.node.libp2p.services.relay, undefined)
    const plain = other.node.multiaddrs()[0] as string
    const third = await startNode(fleet)
    try {
      await assert.rejects(third.node.dial(`${plain}/p2p-circuit/p2p/${relay.id}`))
    } finally {
      await third.node.stop()
    }
  })
})
