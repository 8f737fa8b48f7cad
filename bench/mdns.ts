/**
 * mDNS discovery on a LAN of N hosts, each in its own network namespace on one bridge (multicast
 * stays inside): @libp2p/mdns as llmesh ran it before (a query every 5 s, every answer handed to
 * the peer store) against node/discovery/mdns-discovery.ts (queries backing off from 5 s to 60 s,
 * repeated answers filtered), side by side in one run for each N. Each host is a bare libp2p node
 * (bench/mdns-host.ts) that dials whom it discovers, so the figures are discovery's own cost: mDNS
 * answers each host hears per second and its CPU (share of one core, medians over the hosts) over a
 * window that starts `--settle-s` after the hosts started. Needs root and iproute2.
 *
 * Usage: npx node bench/mdns.ts [--hosts 8,16,24] [--settle-s 60] [--window-s 60]
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { canRunBed, TestBed, until } from '../test/lan/netns.ts'

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '8,16,24' },
    'settle-s': { type: 'string', default: '60' },
    'window-s': { type: 'string', default: '60' },
  },
})
if (!canRunBed()) {
  console.log('bench/mdns.ts needs root and ip netns: skipped')
  process.exit(0)
}
const SETTLE_S = Number(values['settle-s'])
const WINDOW_S = Number(values['window-s'])
const HOST = join(import.meta.dirname, 'mdns-host.ts')

interface Row {
  n: number
  variant: string
  answersPerS: number
  cpuPct: number
  queriesPerMin: number
  peersMin: number
  limited: number
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function measure(n: number, variant: string): Promise<Row> {
  const bed = await TestBed.create({ hosts: n })
  try {
    const procs = bed.hosts.map((h, i) =>
      bed.spawn(h, `${variant}-${i}`, process.execPath, [HOST, variant, String(SETTLE_S), String(WINDOW_S)]),
    )
    const result = (p: (typeof procs)[number]) =>
      p.logs.find((l) => l.msg === 'result') as Record<string, number> | undefined
    await until(
      () => procs.every((p) => result(p) !== undefined || p.child.exitCode !== null),
      (SETTLE_S + WINDOW_S + 120) * 1000,
      `${variant}: every host's result`,
    )
    const rs = procs.map(result)
    if (rs.some((r) => r === undefined))
      throw new Error(`${variant}: a host failed: ${procs.map((p) => p.stderr).join('\n')}`)
    const got = rs as Array<Record<string, number>>
    return {
      n,
      variant,
      answersPerS: median(got.map((r) => r.answersPerS)),
      cpuPct: median(got.map((r) => r.cpuPct)),
      queriesPerMin: median(got.map((r) => r.queriesPerMin)),
      peersMin: Math.min(...got.map((r) => r.peers)),
      limited: got.reduce((a, r) => a + r.limited, 0),
    }
  } finally {
    await bed.destroy()
  }
}

const rows: Row[] = []
for (const [i, n] of values.hosts.split(',').map(Number).entries()) {
  // alternate which variant runs first, so that neither always meets the same machine
  for (const v of i % 2 === 0 ? ['stock', 'llmesh'] : ['llmesh', 'stock']) {
    const r = await measure(n, v)
    console.log(`# ${JSON.stringify(r)}`)
    rows.push(r)
  }
}
console.log(
  `\n\`npx node bench/mdns.ts --hosts ${values.hosts} --settle-s ${SETTLE_S} --window-s ${WINDOW_S}\` (medians over the hosts)\n`,
)
console.log(
  '| hosts | discovery | queries / min / host | answers heard / s / host | CPU / host (% of a core) | fewest peers connected |',
)
console.log('|---:|---|---:|---:|---:|---:|')
for (const r of rows) {
  const name = r.variant === 'stock' ? '@libp2p/mdns, fixed 5 s (before)' : 'llmesh mdns-discovery (backoff + filter)'
  console.log(
    `| ${r.n} | ${name} | ${r.queriesPerMin.toFixed(1)} | ${r.answersPerS.toFixed(2)} | ${r.cpuPct.toFixed(2)} | ${r.peersMin}/${r.n - 1} |`,
  )
}
