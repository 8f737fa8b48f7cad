import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { fleetTopic, TOPIC_ROLLOUT } from '../../protocols/index.ts'
import { command, connect, enrollment, makeFleet, startNode, type TestNode, waitFor, waitForMesh } from './fixtures.ts'

describe('gossip on loopback', () => {
  const fleet = makeFleet()
  const nodes: TestNode[] = []

  before(async () => {
    for (let i = 0; i < 4; i++) nodes.push(await startNode(fleet))
    // a line: 0-1-2-3, so messages must be forwarded
    for (let i = 1; i < nodes.length; i++) await connect(nodes[i], nodes[i - 1])
    await waitForMesh(nodes, fleetTopic(TOPIC_ROLLOUT, fleet.id))
  })

  after(async () => {
    await Promise.all(nodes.map((n) => n.node.stop()))
  })

  test('a signed enrollment published at one end reaches every node, typed', async () => {
    const events: string[] = []
    nodes[3].store.on('enrollment', (m) => events.push(m.message.device))
    const bytes = await enrollment(fleet, nodes[2].id)
    const res = await nodes[0].node.publish(bytes)
    assert.equal(res.status, 'accepted')
    await waitFor(() => nodes.every((n) => n.store.isEnrolled(nodes[2].id)), 10_000, 'enrollment everywhere')
    assert.deepEqual(events, [nodes[2].id])
    assert.equal(nodes[1].store.isEnrolled(nodes[3].id), false)
  })

  test('a command is delivered as a typed command event', async () => {
    const got = new Promise<string>((resolve) => nodes[2].store.once('command', (m) => resolve(m.message.action)))
    await nodes[1].node.publish(await command(fleet))
    assert.equal(await got, 'pause')
  })

  test('publishing a message signed by a foreign operator throws and sends nothing', async () => {
    const other = makeFleet(fleet.id)
    const before = nodes[0].store.size
    await assert.rejects(nodes[0].node.publish(await command(other)), { code: 'ERR_UNKNOWN_SIGNER' })
    assert.equal(nodes[0].store.size, before)
  })
})
