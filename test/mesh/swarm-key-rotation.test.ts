/**
 * Join-secret rotation and revocation on a loopback mesh (one process, mDNS off): a revoked node
 * is cut off at once and refused by peer id; after a rotation sealed to the others, it cannot
 * connect to any node with the old key under any identity, the others stay meshed on the new key,
 * and a new release still reaches them.
 */
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { silentLogger } from '../../node/logger.ts'
import { SwarmKeyService } from '../../node/mesh/swarm-key-service.ts'
import { resolveSwarmKey } from '../../node/mesh/swarm-key-state.ts'
import { fleetTopic, type Revocation, signOperatorMessage, TOPIC_RELEASES } from '../../protocols/index.ts'
import { buildSwarmKeyRotation, swarmKeyFile } from '../../protocols/swarm-key/index.ts'
import { DAY, exampleRelease } from '../fixtures/messages.ts'
import { scaled } from '../helpers/index.ts'
import { connect, makeFleet, startNode, type TestNode, tempDir, waitFor, waitForMesh } from './fixtures.ts'

interface Member extends TestNode {
  keys: SwarmKeyService
}

describe('swarm key rotation on a loopback mesh', () => {
  const fleet = makeFleet()
  const members: Member[] = []
  const extra: TestNode[] = []
  const cleanups: Array<() => Promise<void>> = []
  after(async () => {
    for (const n of [...members, ...extra]) {
      if ('keys' in n) await (n as Member).keys.stop()
      await n.node.stop()
    }
    for (const c of cleanups) await c()
  })

  const member = async (): Promise<Member> => {
    const t = await tempDir()
    cleanups.push(t.cleanup)
    const resolved = await resolveSwarmKey(t.dir, fleet.psk, Date.now())
    const n = await startNode(fleet, { dataDir: t.dir, psk: resolved.psk })
    const keys = new SwarmKeyService(
      { store: n.store, mesh: n.node, privateKey: n.key, self: n.id, logger: silentLogger() },
      { dataDir: t.dir, resolved },
    )
    await keys.start()
    const m = { ...n, keys }
    members.push(m)
    return m
  }

  const connected = (a: TestNode, b: TestNode): boolean => a.node.peers().includes(b.id)
  /** A dial that completes and carries a ping (the remote may drop an upgraded connection it refuses). */
  const canDial = async (from: TestNode, to: TestNode): Promise<boolean> => {
    try {
      await from.node.dial(to.node.multiaddrs()[0])
      await from.node.libp2p.services.ping.ping(peerIdFromString(to.id), { signal: AbortSignal.timeout(scaled(5_000)) })
      return true
    } catch {
      return false
    }
  }

  test('revocation cuts a peer off at once; after the rotation it cannot reconnect, the others stay meshed', async () => {
    const [a, b, c, r] = [await member(), await member(), await member(), await member()]
    const honest = [a, b, c]
    for (const n of [b, c, r]) await connect(n, a)
    await connect(c, b)
    await connect(r, b)
    await waitFor(() => connected(a, r) && connected(b, r), 10_000, 'the future revoked node meshed')

    // revocation: every connection to r closes, and r is refused by peer id from then on
    const revocation: Revocation = {
      type: 'Revocation',
      v: 1,
      fleet: fleet.id,
      device: r.id,
      issued_at: Date.now(),
      reason: 'stolen',
    }
    await a.node.publish(await signOperatorMessage(revocation, fleet.signer))
    await waitFor(() => r.node.peers().length === 0, 10_000, 'the revoked node cut off')
    assert.ok(a.node.gateCounts.refused + b.node.gateCounts.refused >= 2, 'its connections were closed and counted')
    assert.equal(await canDial(r, a), false, 'a revoked peer cannot reconnect while it still holds the key')
    assert.equal(await canDial(a, r), false, 'nor is it dialed')

    // rotation, sealed to the three honest nodes, switching in 2 s
    const published = Date.now()
    const { rotation, key } = buildSwarmKeyRotation({
      fleet: fleet.id,
      epoch: 1,
      devices: honest.map((n) => n.id),
      now: published,
      switchAt: published + scaled(2_000),
    })
    await b.node.publish(await signOperatorMessage(rotation, fleet.signer))
    await waitFor(() => honest.every((n) => n.keys.counts.applied === 1), 20_000, 'every recipient switched')
    const switched = Date.now() - rotation.switch_at
    const newPsk = swarmKeyFile(key)
    for (const n of honest) assert.deepEqual(n.node.swarmKey, newPsk)
    // cut off, the revoked node never even saw the rotation (and could not open it: test/unit/swarm-key.test.ts)
    assert.equal(r.keys.epoch, 0)
    assert.deepEqual(r.node.swarmKey, fleet.psk)
    // recipients kept their connections across the switch
    assert.ok(connected(a, b) && connected(a, c) && connected(b, c), 'the honest nodes stayed meshed')

    // the old key opens no connection any more, whatever the identity (a stolen key, a fresh id)
    for (const n of honest) assert.equal(await canDial(r, n), false, `revoked node reached ${n.id}`)
    const thief = await startNode(fleet, { key: await generateKeyPair('Ed25519') })
    extra.push(thief)
    for (const n of honest) assert.equal(await canDial(thief, n), false, 'a fresh identity with the old key got in')
    assert.equal(thief.node.peers().length, 0)

    // a device given the new key file (the fleet directory's) joins
    const newcomer = await startNode(fleet, { psk: newPsk })
    extra.push(newcomer)
    assert.equal(await canDial(newcomer, c), true, 'the new key opens connections')

    // and a new release still reaches every honest node
    await waitForMesh(honest, fleetTopic(TOPIC_RELEASES, fleet.id), 15_000)
    const now = Date.now()
    const release = exampleRelease({ fleet: fleet.id, seq: 7, created_at: now - 1000, expires_at: now + DAY })
    const wire = await signOperatorMessage(release, fleet.signer)
    const res = await a.node.publish(wire)
    assert.equal(res.status, 'accepted')
    const digest = res.status === 'accepted' ? res.value.digest : ''
    await waitFor(() => honest.every((n) => n.store.has(digest)), 15_000, 'the release reached everyone')
    assert.equal(r.store.has(digest), false, 'the revoked node got nothing')
    console.log(
      `# rotation: published → every recipient switched ${rotation.switch_at - published + switched} ms (switch delay ${rotation.switch_at - published} ms, switch late by ≤ ${switched} ms)`,
    )

    // the new key survives a restart of the node (durable state in its data directory)
    const again = await resolveSwarmKey(b.dataDir as string, fleet.psk, Date.now())
    assert.equal(again.epoch, 1)
    assert.deepEqual(again.psk, newPsk)
    assert.equal(peerIdFromPrivateKey(b.key).toString(), b.id)
  })
})
