/**
 * kill -9 of a process appending to a real message store at full speed, 20 times at random
 * moments, on one data directory: the store always loads (no unreadable record, a torn tail at
 * most), and every message acknowledged before a kill is there.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { scaled, tmpDir, waitFor } from '../helpers/index.ts'

const CHILD = join(import.meta.dirname, 'store-kill-child.ts')
const RUNS = 20

/** Runs the child, kills it `afterMs` after it is ready and has acknowledged something; returns the acks. */
async function appendAndKill(dir: string, afterMs: number): Promise<string[]> {
  const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  const acks: string[] = []
  let ready = false
  let buf = ''
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString()
    let i = buf.indexOf('\n')
    while (i >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      if (line === 'ready') ready = true
      else if (line.startsWith('ack ')) acks.push(line.slice(4))
      i = buf.indexOf('\n')
    }
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  try {
    await waitFor(() => (ready && acks.length > 0) || child.exitCode !== null, { what: 'the child appending' })
    assert.equal(child.exitCode, null, 'the child died by itself')
    await new Promise((r) => setTimeout(r, afterMs))
  } finally {
    child.kill('SIGKILL')
  }
  await exited
  return acks
}

/** Kills `runs` children one after another on one directory, checking the store after each kill. */
async function lane(dir: string, runs: number): Promise<number> {
  const acked: string[] = []
  for (let run = 0; run < runs; run++) {
    acked.push(...(await appendAndKill(dir, Math.floor(Math.random() * 300))))
    const store = new MessageStore({ logger: silentLogger() }, { dataDir: dir })
    await store.load()
    assert.equal(store.health.load.bad, 0, `run ${run}: an unreadable record`)
    const missing = acked.filter((d) => !store.has(d))
    assert.deepEqual(missing, [], `run ${run}: ${missing.length} acknowledged messages lost`)
    assert.ok(store.size >= acked.length)
  }
  return acked.length
}

test('kill -9 while appending: every acknowledged message survives, the store always loads', async (t) => {
  const started = Date.now()
  // two data directories killed in parallel, RUNS kills in all (a child takes seconds to start on a loaded machine)
  const dirs = [await tmpDir(t, 'llmesh-store-kill-'), await tmpDir(t, 'llmesh-store-kill-')]
  const counts = await Promise.all(dirs.map((d) => lane(d, RUNS / dirs.length)))
  const acked = counts.reduce((a, b) => a + b, 0)
  assert.ok(acked > RUNS, `appended ${acked}`)
  t.diagnostic(`${RUNS} kills, ${acked} acknowledged messages, all kept, in ${Date.now() - started} ms`)
  assert.ok(Date.now() - started < scaled(60_000))
})
