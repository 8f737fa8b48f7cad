/**
 * Gossip and anti-entropy convergence with N mesh nodes in one process on loopback (mDNS off,
 * direct dials: each node dials `degree` random earlier nodes, so the graph is connected).
 *
 *   npx node bench/gossip-sim.ts [--nodes 50] [--degree 4] [--rounds 5] [--late 10] [--messages 20]
 *
 * Measures:
 * 1. gossip: one signed message published at a random node until every node accepted it (per round);
 * 2. catch-up: `late` nodes started after `messages` were published, each dialing 3 random nodes,
 *    until every late node holds every message (anti-entropy on connect);
 * 3. epidemic anti-entropy alone: `messages` put into one node's store without gossip, every node
 *    running rounds each second, until every node holds them.
 * Prints a markdown table.
 */
import { parseArgs } from 'node:util'
import { messageIdOfWire } from '../protocols/index.ts'
import { command, makeFleet, startNode, type TestNode, waitFor } from '../test/mesh/fixtures.ts'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '50' },
    degree: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '5' },
    late: { type: 'string', default: '10' },
    messages: { type: 'string', default: '20' },
  },
})
const N = Number(values.nodes)
const D = Number(values.degree)
const R = Number(values.rounds)
const LATE = Number(values.late)
const M = Number(values.messages)

const fleet = makeFleet('bench-fleet')
const pick = <T>(xs: T[], k: number): T[] => [...xs].sort(() => Math.random() - 0.5).slice(0, k)
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const rows: string[] = []
const row = (name: string, nodes: number, msgs: number, times: number[]): void => {
  rows.push(`| ${name} | ${nodes} | ${msgs} | ${times.length} | ${median(times)} | ${Math.max(...times)} |`)
}

async function connect(node: TestNode, peers: TestNode[], k: number): Promise<void> {
  await Promise.all(pick(peers, k).map((p) => node.node.dial(p.node.multiaddrs()[0]).catch(() => undefined)))
}

/** One event loop runs every node: lags of seconds are normal here, so pings must not abort connections. */
const monitor = { abortConnectionOnPingFailure: false }
const all: TestNode[] = []
const t0 = Date.now()
for (let i = 0; i < N; i++) {
  const n = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000 }, connectionMonitor: monitor } })
  if (all.length > 0) await connect(n, all, Math.min(D, all.length))
  all.push(n)
}
process.stderr.write(`started ${N} nodes in ${Date.now() - t0} ms\n`)
// let gossipsub build its meshes (heartbeat 1 s)
await new Promise((r) => setTimeout(r, 3000))

const gossip: number[] = []
for (let r = 0; r < R; r++) {
  const bytes = await command(fleet)
  const digest = messageIdOfWire(bytes)
  const start = performance.now()
  await all[Math.floor(Math.random() * all.length)].node.publish(bytes)
  await waitFor(() => all.every((n) => n.store.has(digest)), 30_000, 'gossip convergence')
  gossip.push(Math.round(performance.now() - start))
}
row('gossip: one message to all', N, 1, gossip)

// catch-up of late nodes
const catchup: number[] = []
const batch: string[] = []
for (let i = 0; i < M; i++) batch.push((await all[0].node.publish(await command(fleet))).status)
try {
  await waitFor(() => all.every((n) => n.store.size === all[0].store.size), 30_000, 'batch everywhere')
} catch (err) {
  const sizes = all.map(
    (n) =>
      `${n.store.size}/${n.node.peers().length}p/${n.node.libp2p.services.pubsub.getSubscribers(n.node.gossip.topicOf('OperatorCommand')).length}s`,
  )
  process.stderr.write(`store size/peers/subscribers per node: ${sizes.join(' ')}\n`)
  throw err
}
const target = all[0].store.size
const lateNodes: TestNode[] = []
const startLate = performance.now()
await Promise.all(
  Array.from({ length: LATE }, async () => {
    const n = await startNode(fleet, { init: { antiEntropy: { intervalMs: 3_600_000 }, connectionMonitor: monitor } })
    lateNodes.push(n)
    const s = performance.now()
    await connect(n, all, 3)
    await waitFor(() => n.store.size === target, 60_000, 'late node catch-up')
    catchup.push(Math.round(performance.now() - s))
  }),
)
row(`anti-entropy catch-up of ${LATE} late nodes (per node)`, N + LATE, target, catchup)
rows.push(
  `| all ${LATE} late nodes caught up | ${N + LATE} | ${target} | 1 | ${Math.round(performance.now() - startLate)} | - |`,
)

await Promise.all([...all, ...lateNodes].map((n) => n.node.stop()))

// epidemic anti-entropy alone (no gossip): fresh network, rounds every second
const ae: TestNode[] = []
for (let i = 0; i < N; i++) {
  const n = await startNode(fleet, { init: { antiEntropy: { intervalMs: 1000 }, connectionMonitor: monitor } })
  if (ae.length > 0) await connect(n, ae, Math.min(D, ae.length))
  ae.push(n)
}
const msgs = await Promise.all(Array.from({ length: M }, () => command(fleet)))
const verify = ae[0].node.ingest
const start = performance.now()
for (const b of msgs) await verify.ingest(b, 'local')
const times: number[] = []
await waitFor(
  () => {
    for (const n of ae)
      if (!times[ae.indexOf(n)] && n.store.size === M) times[ae.indexOf(n)] = Math.round(performance.now() - start)
    return ae.every((n) => n.store.size === M)
  },
  120_000,
  'anti-entropy-only convergence',
)
row(
  'anti-entropy only (1 s rounds, no gossip): per node',
  N,
  M,
  times.filter((t) => t !== undefined),
)
await Promise.all(ae.map((n) => n.node.stop()))

process.stdout.write(
  [
    `Gossip simulation: ${N} nodes on loopback in one process, degree ${D}, Node ${process.version}`,
    '',
    '| scenario | nodes | messages | samples | median ms | max ms |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n'),
)
process.exit(0)
