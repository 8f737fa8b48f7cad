/**
 * What durable appends cost: health reports put into a real MessageStore on this disk, with and
 * without fsync, one put at a time and many in flight (group commit: concurrent puts share one
 * write + fdatasync).
 *
 *   npx node bench/message-store.ts [--messages 2000] [--inflight 64] [--dir /path/on/the/disk]
 *
 * Prints a markdown table: appends/s, commits, records per commit.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { silentLogger } from '../node/logger.ts'
import { MessageStore } from '../node/mesh/message-store.ts'
import { report, reporter, type WireMessage } from '../test/unit/store-fixtures.ts'

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    inflight: { type: 'string', default: '64' },
    dir: { type: 'string', default: tmpdir() },
  },
})
const N = Number(values.messages)
const INFLIGHT = Number(values.inflight)

const r = await reporter()
const msgs: WireMessage[] = []
for (let i = 0; i < N; i++) msgs.push(await report(r, i))

async function measure(sync: boolean, inflight: number) {
  const dir = await mkdtemp(join(values.dir, 'llmesh-bench-store-'))
  try {
    const store = new MessageStore({ logger: silentLogger() }, { dataDir: dir, sync })
    await store.load()
    let next = 0
    const t0 = performance.now()
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (next < N) {
          const m = msgs[next++]
          await store.put(m.verified, m.bytes)
        }
      }),
    )
    const s = (performance.now() - t0) / 1000
    const { commits, lines } = store.writeStats()
    return { rate: N / s, commits, perCommit: lines / commits }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

console.log(`${N} health reports (${msgs[0].bytes.length} B on the wire) into ${values.dir}\n`)
console.log('| fsync | puts in flight | appends/s | commits | records per commit |')
console.log('|---|---:|---:|---:|---:|')
for (const inflight of [1, INFLIGHT]) {
  for (const sync of [false, true]) {
    const m = await measure(sync, inflight)
    console.log(
      `| ${sync ? 'yes' : 'no'} | ${inflight} | ${m.rate.toFixed(0)} | ${m.commits} | ${m.perCommit.toFixed(1)} |`,
    )
  }
}
