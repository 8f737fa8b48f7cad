/**
 * The footprint of an idle device (issue 17 goal 5), as an installed package runs it: the device
 * unit's command (`llmesh agent run -- node start`, packaging/systemd/llmesh-node.service) through
 * the real launcher (packaging/llmesh, in a package layout: this checkout's sources compiled to
 * JavaScript and the CLI bundled as the package ships them, packaging/compile.ts and bundle.ts,
 * with links to its node and node_modules), with the unit's `Environment=`, on loopback (mDNS off)
 * with no model, from an agent root whose one version is that package. The supervisor
 * (cli/agent-run.ts) hands its process over to the daemon (`agent_handover`,
 * node/agent-update/handover.ts): checked, the device is ONE process, the unit's main PID running
 * `node start` with no child (no supervisor beside it: 48 MiB more; no inference worker: ~100 MiB
 * more), the launcher's V8 and malloc settings reach it, it has not opened its empty store (no
 * RocksDB mapped, no store directory: node/store/store-open.ts, +9 to +12 MiB), and its RSS stays
 * under IDLE_RSS_LIMIT_MIB. The goal is 100 MB (95.4 MiB); measured here ~94-100 MiB (the largest
 * RSS seen while the test queries the API; docs/benchmarks.md, fifth pass), so the limit guards
 * what was reached with a margin for a loaded machine (the lost settings, +18 to +50 MiB, fail it; the `.ts`
 * sources, +17, and undici, +10, are checked exactly by test/unit/idle-footprint-parts.test.ts and
 * the package tests; the supervisor's modules by test/unit/agent-runner-lean.test.ts) rather than
 * the goal.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { access, copyFile, mkdir, readFile, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { memoryOf } from '../../bench/proc-stats.ts'
import { sourceFiles } from '../../packaging/build.ts'
import { bundleCli } from '../../packaging/bundle.ts'
import { emitFile, shippedPath } from '../../packaging/compile.ts'
import { APP_DIRS, DAEMON_MALLOC_ARENAS, DAEMON_NODE_FLAGS } from '../../packaging/constants.ts'
import { scaled, tmpDir, waitFor } from '../helpers/index.ts'
import { childPids } from '../helpers/processes.ts'

/** RSS of the idle device (its one process, the daemon), MiB: 94-100 measured on x64 (107-112 with its store opened at start, 114-118 + a 48-50 supervisor before the handover), plus a margin. */
const IDLE_RSS_LIMIT_MIB = 110
/** Wakeups of the idle daemon's main thread a second: ~10 measured, plus a margin. */
const IDLE_WAKEUPS_PER_S = 35
/** How long the idle daemon is watched for wakeups. */
const WAKEUP_WINDOW_MS = 5000
const REPO = join(import.meta.dirname, '..', '..')

/** The device unit's `Environment=` settings (packaging/systemd/llmesh-node.service). */
async function unitEnv(): Promise<Record<string, string>> {
  const text = await readFile(join(REPO, 'packaging', 'systemd', 'llmesh-node.service'), 'utf8')
  return Object.fromEntries([...text.matchAll(/^Environment=([A-Z_]+)=(\S*)$/gm)].map((m) => [m[1], m[2]]))
}

test('an idle device with no model, as its unit runs it: one process, launcher settings applied, RSS under the limit', {
  timeout: scaled(120_000),
}, async (t) => {
  const dir = await tmpDir(t, 'llmesh-idle-footprint-')
  // <pkg>/bin/llmesh, <pkg>/runtime/bin/node, <pkg>/app: what the launcher expects
  const pkg = join(dir, 'pkg')
  await mkdir(join(pkg, 'bin'), { recursive: true })
  await mkdir(join(pkg, 'runtime', 'bin'), { recursive: true })
  await copyFile(join(REPO, 'packaging', 'llmesh'), join(pkg, 'bin', 'llmesh'))
  await symlink(process.execPath, join(pkg, 'runtime', 'bin', 'node'))
  for (const f of sourceFiles(REPO)) {
    const dest = shippedPath(f)
    if (dest !== undefined) emitFile(join(REPO, f), join(pkg, 'app', dest))
  }
  await symlink(join(REPO, 'node_modules'), join(pkg, 'app', 'node_modules'))
  bundleCli(join(pkg, 'app'), APP_DIRS)
  // the fleet made by the package's own CLI: signing (its lazily imported @sigstore/sign) runs in the bundle
  const init = spawnSync(
    join(pkg, 'bin', 'llmesh'),
    ['fleet', 'init', join(dir, 'fleet'), '--fleet-id', 'idle-fleet'],
    {
      encoding: 'utf8',
      timeout: scaled(60_000),
    },
  )
  assert.equal(init.status, 0, `llmesh fleet init from the package: ${init.stderr}`)
  const data = join(dir, 'data')
  const env: NodeJS.ProcessEnv = { ...process.env, ...(await unitEnv()), LLMESH_LOG_LEVEL: 'warn' }
  delete env.MALLOC_ARENA_MAX
  assert.equal(env.LLMESH_AGENT_HANDOVER, 'true', "the unit's Environment=")
  // the agent root of an installed device: <root>/<version> (here the package), current -> it
  const root = join(dir, 'opt-llmesh')
  await mkdir(root)
  await symlink(pkg, join(root, '0.1.0'))
  await symlink('0.1.0', join(root, 'current'))
  const child: ChildProcess = spawn(
    'sh',
    [
      ...[join(root, 'current', 'bin', 'llmesh'), 'agent', 'run', '--agent-root', root, '--'],
      ...['node', 'start', '--fleet', join(dir, 'fleet'), '--data', data],
      ...['--no-mdns', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0'],
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env },
  )
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString('utf8')).slice(-4000)
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await exited
    }
  })
  // the launcher execs node, the supervisor execs the daemon's launcher: one PID all along
  const pid = child.pid!
  let api = ''
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`the device exited: ${stderr}`)
      const info = await readFile(join(data, 'node.json'), 'utf8').catch(() => '')
      if (info === '') return false
      api = (JSON.parse(info) as { api: string }).api
      return (await fetch(`${api}/status`).catch(() => undefined))?.ok === true
    },
    { timeoutMs: 40_000, what: 'the daemon answering /status', detail: () => stderr },
  )
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
  for (const flag of DAEMON_NODE_FLAGS) assert.ok(cmdline.includes(flag), cmdline.join(' '))
  assert.deepEqual(cmdline.slice(cmdline.indexOf('start') - 1, cmdline.indexOf('start') + 1), ['node', 'start'])
  const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0')
  assert.ok(environ.includes(`MALLOC_ARENA_MAX=${DAEMON_MALLOC_ARENAS}`))
  assert.ok(environ.includes('LLMESH_AGENT_VERSION=0.1.0'), 'started by the supervisor')
  assert.deepEqual(await childPids('', pid), [], 'one process: the supervisor became the daemon')
  // a few rounds of the API and the daemon's timers; the largest RSS seen counts
  let rss = 0
  for (let i = 0; i < 20; i++) {
    const st = (await (await fetch(`${api}/status`)).json()) as { inference?: { state: string; model: unknown } }
    assert.equal(st.inference?.state, 'idle')
    assert.equal(st.inference?.model, null)
    assert.deepEqual(await childPids('', pid), [], 'no child process: no inference worker')
    rss = Math.max(rss, (await memoryOf(pid))?.rss ?? 0)
    await fetch(`${api}/metrics`)
  }
  // a device that holds no feed has not opened its store (node/store/store-open.ts): RocksDB's
  // native module (~9 MiB with its threads) is not mapped and there is no store directory
  assert.doesNotMatch(await readFile(`/proc/${pid}/maps`, 'utf8'), /rocksdb/i, 'RocksDB loaded by an idle device')
  await assert.rejects(access(join(data, 'store')), { code: 'ENOENT' }, 'the store directory was opened')
  const mib = rss / 2 ** 20
  t.diagnostic(`idle device RSS (its one process): ${mib.toFixed(1)} MiB`)
  assert.ok(mib <= IDLE_RSS_LIMIT_MIB, `idle device RSS ${mib.toFixed(1)} MiB > ${IDLE_RSS_LIMIT_MIB} MiB`)
  // left alone, it sleeps: its main thread wakes for its timers and peers only (prom-client's
  // default 10 ms event-loop monitor alone woke it 67-100 times a second)
  const wakeups = async () =>
    Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1])
  const w0 = await wakeups()
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, WAKEUP_WINDOW_MS))
  const rate = ((await wakeups()) - w0) / ((performance.now() - t0) / 1000)
  t.diagnostic(`idle device wakeups ${rate.toFixed(1)}/s`)
  assert.ok(rate <= IDLE_WAKEUPS_PER_S, `idle device woke ${rate.toFixed(1)} times a second`)
})
