/**
 * `npm run bench`: runs the benchmarks of `bench/` one after another with the settings
 * docs/benchmarks.md quotes, each as its own process (so one failing benchmark does not stop the
 * others), and prints a summary. Benchmarks that need root and network namespaces (fan-out) are
 * skipped with a message when not run as root.
 *
 * Usage: npm run bench [-- --only inference,rollout-sim] [--quick]
 *   --only  comma-separated names (see BENCHMARKS below)
 *   --quick small sizes and one run each: checks that every benchmark still runs, in a few minutes
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

interface Bench {
  name: string
  file: string
  /** Arguments of the figures in docs/benchmarks.md. */
  args: string[]
  /** Arguments of a quick smoke run. */
  quick: string[]
  needsRoot?: boolean
  /** Node options it needs (before the file). */
  nodeFlags?: string[]
}

const BENCHMARKS: Bench[] = [
  { name: 'inference', file: 'inference.ts', args: ['--runs', '7'], quick: ['--runs', '1', '--idle-s', '1'] },
  {
    name: 'distribution',
    file: 'distribution.ts',
    args: ['--mib', '128', '--runs', '5'],
    quick: ['--mib', '8', '--runs', '1'],
  },
  {
    name: 'frame-decoder',
    file: 'frame-decoder.ts',
    args: ['--messages', '20000', '--runs', '6'],
    quick: ['--messages', '2000', '--runs', '1'],
  },
  { name: 'chunk-delta', file: 'chunk-delta.ts', args: ['--mib', '64'], quick: ['--mib', '8'] },
  {
    name: 'idle',
    file: 'idle.ts',
    args: ['--window-s', '60', '--settle-s', '10'],
    quick: ['--window-s', '5', '--settle-s', '2', '--sizes', 'small'],
  },
  {
    name: 'idle-agent',
    file: 'idle-agent.ts',
    args: ['--settle-s', '10', '--window-s', '30'],
    quick: ['--settle-s', '2', '--window-s', '2'],
  },
  { name: 'gossip-sim', file: 'gossip-sim.ts', args: [], quick: [] },
  {
    name: 'history',
    file: 'history.ts',
    args: ['--devices', '1000', '--days', '7'],
    quick: ['--devices', '50', '--days', '1'],
  },
  { name: 'message-store', file: 'message-store.ts', args: ['--messages', '2000'], quick: ['--messages', '200'] },
  {
    name: 'report-heap',
    file: 'report-heap.ts',
    args: ['--reports', '100'],
    quick: ['--reports', '10'],
    nodeFlags: ['--expose-gc'],
  },
  {
    name: 'store-retention',
    file: 'store-retention.ts',
    args: ['--devices', '1000', '--hours', '3', '--interval-s', '120', '--hostile', '3'],
    quick: ['--devices', '20', '--hours', '2', '--hostile', '1'],
  },
  {
    name: 'reconcile',
    file: 'reconcile.ts',
    args: ['--sizes', '100000,200000', '--diffs', '0,10,1000'],
    quick: ['--sizes', '20000', '--diffs', '0,10'],
  },
  { name: 'fuzz', file: 'fuzz.ts', args: ['--runs', '10000'], quick: ['--runs', '500'] },
  { name: 'rollout-sim', file: 'rollout-sim.ts', args: ['--nodes', '100', '--seed', '1'], quick: ['--nodes', '20'] },
  {
    name: 'rollout-fleet',
    file: 'rollout-fleet.ts',
    args: ['--devices', '16', '--report', '2s'],
    quick: ['--devices', '3', '--report', '2s'],
  },
  {
    name: 'fanout',
    file: 'fanout.ts',
    args: ['--layers', '3', '--embd', '512', '--rate', '100', '--runs', '3'],
    quick: ['--layers', '1', '--embd', '128', '--runs', '1'],
    needsRoot: true,
  },
  {
    name: 'mdns',
    file: 'mdns.ts',
    args: ['--hosts', '8,16,24', '--settle-s', '60', '--window-s', '60'],
    quick: ['--hosts', '4', '--settle-s', '5', '--window-s', '5'],
    needsRoot: true,
  },
]

const { values } = parseArgs({ options: { only: { type: 'string' }, quick: { type: 'boolean', default: false } } })
const only = values.only?.split(',').map((s) => s.trim())
const unknown = only?.filter((n) => !BENCHMARKS.some((b) => b.name === n)) ?? []
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.map((b) => b.name).join(', ')}`)
  process.exit(2)
}

function run(b: Bench): Promise<number> {
  const args = [join(import.meta.dirname, b.file), ...(values.quick ? b.quick : b.args)]
  const flags = b.nodeFlags ?? []
  console.log(`\n## ${b.name}: node ${[...flags, `bench/${b.file}`, ...args.slice(1)].join(' ')}\n`)
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...flags, ...args], { stdio: 'inherit' })
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)))
    child.on('error', () => resolve(127))
  })
}

const results: Array<{ name: string; outcome: string }> = []
for (const b of BENCHMARKS) {
  if (only && !only.includes(b.name)) continue
  if (b.needsRoot && process.getuid?.() !== 0) {
    results.push({ name: b.name, outcome: 'skipped (needs root for network namespaces)' })
    continue
  }
  const code = await run(b)
  results.push({ name: b.name, outcome: code === 0 ? 'ok' : `failed (exit ${code})` })
}
console.log('\n## summary\n')
for (const r of results) console.log(`- ${r.name}: ${r.outcome}`)
process.exit(results.some((r) => r.outcome.startsWith('failed')) ? 1 : 0)
