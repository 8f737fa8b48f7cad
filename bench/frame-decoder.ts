/**
 * Small messages over a real libp2p connection (TCP, Noise, yamux on loopback), with libp2p's
 * length-prefixed decoder as upstream ships it and with node/mesh/frame-decoder-fix.ts (no
 * RangeError thrown at the end of every read). Each variant runs in its own process, alternated,
 * so that the patch is in one and not in the other.
 *
 *   npx node bench/frame-decoder.ts [--messages 20000] [--size 200] [--runs 3]
 *
 * Prints a markdown table: round trips per second and CPU per round trip (both nodes: one process).
 */
import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    size: { type: 'string', default: '200' },
    runs: { type: 'string', default: '3' },
    child: { type: 'string' },
  },
})
const MESSAGES = Number(values.messages)
const SIZE = Number(values.size)

if (values.child !== undefined) {
  if (values.child === 'fixed') await import('../node/mesh/frame-decoder-fix.ts')
  const { noise } = await import('@chainsafe/libp2p-noise')
  const { yamux } = await import('@chainsafe/libp2p-yamux')
  const { tcp } = await import('@libp2p/tcp')
  const { createLibp2p } = await import('libp2p')
  const node = () =>
    createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
    })
  const [a, b] = await Promise.all([node(), node()])
  await b.handle('/bench/echo/1', (stream) => {
    stream.addEventListener('message', (evt) => {
      stream.send(evt.data)
    })
  })
  const stream = await a.dialProtocol(b.getMultiaddrs()[0], '/bench/echo/1')
  const msg = new Uint8Array(SIZE).fill(7)
  let left = MESSAGES
  let received = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await new Promise<void>((resolve) => {
    stream.addEventListener('message', (evt) => {
      received += evt.data.byteLength
      // one message in flight: every read is one frame, the case the fix is for
      while (received >= SIZE) {
        received -= SIZE
        if (--left === 0) return resolve()
        stream.send(msg)
      }
    })
    stream.send(msg)
  })
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  process.stdout.write(
    JSON.stringify({ perS: (MESSAGES * 1000) / ms, cpuUsPerTrip: (cpu.user + cpu.system) / MESSAGES }) + '\n',
  )
  await Promise.all([a.stop(), b.stop()])
  process.exit(0)
}

const rows: Record<string, { perS: number; cpuUsPerTrip: number }[]> = { stock: [], fixed: [] }
for (let r = 0; r < Number(values.runs); r++) {
  for (const v of r % 2 === 0 ? ['stock', 'fixed'] : ['fixed', 'stock']) {
    const out = spawnSync(
      process.execPath,
      [import.meta.filename, '--child', v, '--messages', String(MESSAGES), '--size', String(SIZE)],
      { encoding: 'utf8' },
    )
    if (out.status !== 0) throw new Error(`${v} run failed: ${out.stderr}`)
    rows[v].push(JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '{}'))
  }
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]
console.log(`${MESSAGES} round trips of ${SIZE} B, one in flight, ${values.runs} runs each (medians)\n`)
console.log('| decoder | round trips/s | CPU µs per round trip (both ends) | runs |')
console.log('|---|---:|---:|---|')
for (const [v, rs] of Object.entries(rows)) {
  const per = median(rs.map((x) => x.perS))
  const cpu = median(rs.map((x) => x.cpuUsPerTrip))
  console.log(
    `| ${v === 'stock' ? 'upstream (RangeError per read)' : 'frame-decoder-fix'} | ${per.toFixed(0)} | ${cpu.toFixed(1)} | ${rs.map((x) => x.cpuUsPerTrip.toFixed(1)).join(', ')} |`,
  )
}
