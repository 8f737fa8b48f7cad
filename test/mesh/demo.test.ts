/**
 * The README's main job, `npm run demo`, end to end: `llmesh demo --once` makes a fleet, starts a
 * seed and three devices as real processes on loopback (mDNS off), publishes a first release that
 * activates everywhere, gets a chat completion, rolls a second release pilot → canary → full and
 * stops every process. Nothing else in the suite runs this command, so without this test a change
 * could break the first thing a new user types.
 */
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { cli, scaled, tmpDir } from '../helpers/index.ts'
import { freePortRun } from '../helpers/ports.ts'

const DEVICES = 3

/** The pids of live processes whose command line mentions `needle` (any parent). */
function processesMentioning(needle: string): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle)) out.push(Number(name))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

test('llmesh demo --once: a fleet, a release everywhere, a chat, a canary rollout, a clean stop', {
  timeout: scaled(200_000),
}, async (t) => {
  const dir = join(await tmpDir(t, 'llmesh-demo-'), 'demo')
  const base = await freePortRun(DEVICES + 1)
  const r = await cli(
    ['demo', '--once', '--fresh', '--dir', dir, '--devices', String(DEVICES), '--base-port', String(base)],
    {
      timeoutMs: 180_000,
    },
  )
  const out = r.stdout
  assert.equal(r.code, 0, `demo exited ${r.code}\n${out}\n${r.stderr}`)

  // the milestones, in the order the README describes them
  const milestones = [
    `seed:     http://127.0.0.1:${base}`,
    ...Array.from({ length: DEVICES }, (_, i) => `device-${i + 1}: http://127.0.0.1:${base + i + 1}  enrolled`),
    'tiny@1.0.0+gguf-f32 is active on every device',
    'chat completion from device-1:',
    'publishing tiny@1.1.0+gguf-f32',
    'tiny@1.1.0+gguf-f32 is active on every device',
    'demo finished: every process stopped cleanly',
  ]
  let at = 0
  for (const m of milestones) {
    const i = out.indexOf(m, at)
    assert.ok(i >= 0, `missing or out of order: ${JSON.stringify(m)}\n${out}`)
    at = i + m.length
  }
  // the canary went through its stages rather than jumping: the seed reported the rollout's states
  assert.match(out, /rollout state: \w+/, out)
  // `llmesh status` of device-1, printed at the end, shows the new version active
  const status = out.slice(out.indexOf('tiny@1.1.0+gguf-f32 is active on every device'))
  assert.match(status, /1\.1\.0\+gguf-f32/, status)

  // every process wrote its log, and none outlives the demo
  for (const name of ['seed', ...Array.from({ length: DEVICES }, (_, i) => `device-${i + 1}`)]) {
    const log = join(dir, 'logs', `${name}.log`)
    assert.ok(existsSync(log) && statSync(log).size > 0, `${name} wrote no log`)
  }
  assert.deepEqual(processesMentioning(dir), [], 'demo processes left running')
})
