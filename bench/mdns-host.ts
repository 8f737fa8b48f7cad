/**
 * One host of bench/mdns.ts, run inside a network namespace: a libp2p node (TCP, Noise, Yamux) whose
 * only discovery is mDNS, `stock` (@libp2p/mdns at llmesh's former fixed 5 s interval) or `llmesh`
 * (node/discovery/mdns-discovery.ts), dialing every peer it discovers as a mesh node does. After
 * `settleS` it measures `windowS`: this process's CPU and the mDNS answers it heard, then prints one
 * JSON line on stderr { msg: 'result', … } and exits. argv: variant settleS windowS.
 */

import { execFileSync } from 'node:child_process'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { PeerDiscovery } from '@libp2p/interface'
import { type MulticastDNSComponents, mdns } from '@libp2p/mdns'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { MDNS_INTERVAL_MS } from '../node/constants.ts'
import { MdnsStats, mdnsDiscovery } from '../node/discovery/mdns-discovery.ts'
import { MDNS_SERVICE_TAG } from '../node/mesh/host.ts'
import { NETNS_PREFIX } from '../test/lan/netns-cleanup.ts'

// mDNS multicasts: only inside a namespace of a test bed (bench/mdns.ts), never on the machine's interfaces
const ns = (() => {
  try {
    return execFileSync('ip', ['netns', 'identify', String(process.pid)], { encoding: 'utf8' }).trim()
  } catch {
    return ''
  }
})()
if (!ns.startsWith(NETNS_PREFIX)) {
  process.stderr.write('bench/mdns-host.ts runs only inside a test bed namespace (bench/mdns.ts starts it there)\n')
  process.exit(2)
}
const line = (o: object) => process.stderr.write(`${JSON.stringify(o)}\n`)
const [variant, settleS, windowS] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])]
const stats = new MdnsStats()
let stockAnswers = 0
const discovery =
  variant === 'stock'
    ? (components: MulticastDNSComponents): PeerDiscovery => {
        const d = mdns({ serviceTag: MDNS_SERVICE_TAG, interval: MDNS_INTERVAL_MS })(components)
        d.addEventListener('peer', () => stockAnswers++)
        return d
      }
    : mdnsDiscovery({ serviceTag: MDNS_SERVICE_TAG, stats })
const heard = () => (variant === 'stock' ? stockAnswers : Object.values(stats.answers).reduce((a, b) => a + b, 0))
const node = await createLibp2p({
  addresses: { listen: ['/ip4/0.0.0.0/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  peerDiscovery: [discovery],
})
node.addEventListener('peer:discovery', (e) => {
  node.dial(e.detail.id).catch((err: Error) => line({ msg: 'dial failed', err: err.message }))
})
await node.start()
line({ msg: 'started', peerId: node.peerId.toString() })
await new Promise((r) => setTimeout(r, settleS * 1000))
const c0 = process.cpuUsage()
const a0 = heard()
const q0 = stats.queries
const t0 = performance.now()
// at the window's start: at its end the other hosts may be stopping
const peers = new Set(node.getConnections().map((x) => x.remotePeer.toString())).size
await new Promise((r) => setTimeout(r, windowS * 1000))
const c = process.cpuUsage(c0)
const s = (performance.now() - t0) / 1000
line({
  msg: 'result',
  cpuPct: ((c.user + c.system) / 1e6 / s) * 100,
  answersPerS: (heard() - a0) / s,
  queriesPerMin: variant === 'stock' ? 60 / (MDNS_INTERVAL_MS / 1000) : ((stats.queries - q0) / s) * 60,
  peers,
  limited: stats.answers.limited,
})
await node.stop()
process.exit(0)
