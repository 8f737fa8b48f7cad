/**
 * A lost connection to a known peer comes back by itself, without bootstrap addresses: libp2p only
 * announces peers new to its peer store, so a mesh found by mDNS alone must redial known peers
 * itself or a healed partition stays split.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { makeFleet, startNode, type TestNode, waitFor } from './fixtures.ts'

const nodes: TestNode[] = []
after(async () => {
  for (const n of nodes) await n.node.stop()
})

test('a known peer that was hung up on is redialed without any bootstrap address', async () => {
  const fleet = makeFleet()
  const init = { bootstrapRedialMs: 200 }
  const a = await startNode(fleet, { init })
  const b = await startNode(fleet, { init })
  nodes.push(a, b)
  await a.node.libp2p.dial(multiaddr(b.node.multiaddrs()[0]))
  await waitFor(() => a.node.peers().includes(b.id), 10_000, 'first connection')
  // cut it from both sides, as a partition would
  await a.node.libp2p.hangUp(b.node.libp2p.peerId)
  await b.node.libp2p.hangUp(a.node.libp2p.peerId)
  assert.equal(a.node.peers().includes(b.id), false)
  await waitFor(() => a.node.peers().includes(b.id) && b.node.peers().includes(a.id), 10_000, 'redial')
})
