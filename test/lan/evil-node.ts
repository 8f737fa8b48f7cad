/**
 * Test-only entry point: the real `llmesh` CLI with one fault, a node that flips a byte in every
 * block it serves (after the block left its own verified store). Everything else (fetching,
 * verification, its own installs, the API) is the real daemon. Prints one JSON line per
 * corrupted block on stderr (`msg: 'test fault: corrupted block sent'`, level 30).
 *
 *   node test/lan/evil-node.ts node start …   (same arguments as `llmesh`)
 */
import type Hypercore from 'hypercore'
import { ModelStore } from '../../node/store/model-store.ts'

interface WirePeer {
  wireData: { send: (msg: { block?: { index: number; value: Buffer } | null }) => void }
}

let corrupted = 0
const patchedPeers = new WeakSet<object>()
const patchedCores = new WeakSet<object>()

function corruptOutgoing(peer: WirePeer): void {
  if (patchedPeers.has(peer)) return
  patchedPeers.add(peer)
  const send = peer.wireData.send.bind(peer.wireData)
  peer.wireData.send = (msg) => {
    if (!msg.block) return send(msg)
    const value = Buffer.from(msg.block.value)
    value[value.length >> 1] ^= 0xff
    corrupted++
    process.stderr.write(
      `${JSON.stringify({ level: 30, time: Date.now(), msg: 'test fault: corrupted block sent', block: msg.block.index, corrupted })}\n`,
    )
    send({ ...msg, block: { ...msg.block, value } })
  }
}

const feed = ModelStore.prototype.feed
ModelStore.prototype.feed = async function patchedFeed(this: ModelStore, keyHex: string): Promise<Hypercore> {
  const core = await feed.call(this, keyHex)
  if (!patchedCores.has(core)) {
    patchedCores.add(core)
    core.on('peer-add', (p: WirePeer) => corruptOutgoing(p))
    for (const p of core.peers as WirePeer[]) corruptOutgoing(p)
  }
  return core
}

await import('../../cli/bin.ts')
