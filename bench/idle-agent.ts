/**
 * The other process of an installed device: `llmesh agent run`, the supervisor the device unit
 * starts (packaging/systemd/llmesh-node.service), which runs `<root>/current/bin/llmesh node start`
 * and stays beside it. Measures its own RSS (anonymous / file pages) and CPU once settled, for each
 * `--device` variant side by side (bench/idle-devices.ts; here each is a supervisor, not a daemon).
 * The supervised child is a stub that sleeps, so only the supervisor is measured (the daemon is
 * bench/idle.ts's). With `--daemon`, each supervisor runs its own real idle daemon instead (`node
 * start` of the same code, with the same node flags, on loopback, mDNS off, no peers, no model), and
 * the pair is measured as a device holds it: each process's RSS, their sum, and the memory they hold
 * together with shared pages counted once (bench/idle-pages.ts; the node binary's code is mapped by
 * both). A device whose environment sets LLMESH_AGENT_HANDOVER=true (the device unit does) is one
 * process once settled: the supervisor exec'd the daemon (node/agent-update/handover.ts); its
 * supervisor columns show "—" and the daemon is that process.
 *
 * Usage: npx node bench/idle-agent.ts [--settle-s 10] [--window-s 30] [--daemon] [--device "js=js MALLOC_ARENA_MAX=2 --heap-growing-percent=200" …]
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { initFleet } from '../node/fleet/index.ts'
import { DAEMON_NODE_FLAGS } from '../packaging/constants.ts'
import { binsOf, deviceArg, parseDevice } from './idle-devices.ts'
import { unionResident } from './idle-pages.ts'
import { childrenOf, cpuPercentOver, memoryOf, mib } from './proc-stats.ts'

const { values } = parseArgs({
  options: {
    'settle-s': { type: 'string', default: '10' },
    'window-s': { type: 'string', default: '30' },
    device: { type: 'string', multiple: true },
    daemon: { type: 'boolean', default: false },
  },
})
const DAEMON = values.daemon
const SETTLE_MS = Number(values['settle-s']) * 1000
const WINDOW_MS = Number(values['window-s']) * 1000
const specs = (
  values.device ?? ['js=js MALLOC_ARENA_MAX=2', `js-flags=js MALLOC_ARENA_MAX=2 ${DAEMON_NODE_FLAGS.join(' ')}`]
).map(parseDevice)
const root = await mkdtemp(join(tmpdir(), 'bench-idle-agent-'))
const children: ChildProcess[] = []
try {
  const binOf = await binsOf(specs, root)
  const fleet = join(root, 'fleet')
  if (DAEMON) await initFleet(fleet, { fleetId: 'idle-agent-fleet' })
  for (const [i, d] of specs.entries()) {
    // an agent root with one version whose launcher sleeps, or runs this spec's daemon
    const agentRoot = join(root, `agents-${i}`)
    const launcher = DAEMON
      ? `#!/bin/sh\nexec "${process.execPath}" ${d.flags.join(' ')} "${binOf(d.entry)}" "$@"\n`
      : '#!/bin/sh\nexec sleep 3600\n'
    await mkdir(join(agentRoot, '0.1.0', 'bin'), { recursive: true })
    await writeFile(join(agentRoot, '0.1.0', 'bin', 'llmesh'), launcher)
    await chmod(join(agentRoot, '0.1.0', 'bin', 'llmesh'), 0o755)
    await symlink('0.1.0', join(agentRoot, 'current'))
    const daemonArgs = ['node', 'start', '--fleet', fleet, '--data', join(root, `data-${i}`), '--no-mdns']
    daemonArgs.push('--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0')
    const args = [...d.flags, binOf(d.entry), 'agent', 'run', '--agent-root', agentRoot, '--']
    args.push(...(DAEMON ? daemonArgs : ['node', 'start']))
    children.push(
      spawn(process.execPath, args, {
        stdio: 'ignore',
        env: { ...process.env, ...d.env, LLMESH_LOG_LEVEL: 'warn' },
      }),
    )
  }
  if (DAEMON) {
    // every daemon up (node.json written, /status answering)
    const end = Date.now() + 120_000
    for (const i of specs.keys()) {
      for (;;) {
        const info = await readFile(join(root, `data-${i}`, 'node.json'), 'utf8').catch(() => '')
        const api = info === '' ? '' : (JSON.parse(info) as { api: string }).api
        if (api !== '' && (await fetch(`${api}/status`).catch(() => undefined))?.ok === true) break
        if (Date.now() > end || children[i].exitCode !== null) throw new Error(`${specs[i].name}: no daemon`)
        await new Promise((r) => setTimeout(r, 250))
      }
    }
  }
  await new Promise((r) => setTimeout(r, SETTLE_MS))
  // a supervisor's one child is its daemon; a supervisor with none that runs `node start` handed over (one process)
  const handedOver = await Promise.all(
    children.map(async (c) => DAEMON && (await childrenOf(c.pid!)).length === 0 && (await isDaemon(c.pid!))),
  )
  const daemons = DAEMON
    ? await Promise.all(children.map(async (c, i) => (handedOver[i] ? c.pid! : (await childrenOf(c.pid!))[0])))
    : []
  const [cpu, daemonCpu] = await Promise.all([
    Promise.all(children.map((c, i) => (handedOver[i] ? Promise.resolve(0) : cpuPercentOver(c.pid!, WINDOW_MS)))),
    Promise.all(daemons.map((pid) => cpuPercentOver(pid, WINDOW_MS))),
  ])
  const mem = await Promise.all(children.map((c) => memoryOf(c.pid!)))
  const daemonMem = await Promise.all(daemons.map((pid) => memoryOf(pid)))
  const together = await Promise.all(
    children.map((c, i) => (!DAEMON ? 0 : unionResident(handedOver[i] ? [c.pid!] : [c.pid!, daemons[i]]))),
  )
  console.log(
    `\nCommand: \`npx node bench/idle-agent.ts --settle-s ${SETTLE_MS / 1000} --window-s ${WINDOW_MS / 1000}${DAEMON ? ' --daemon' : ''} ${specs.map(deviceArg).join(' ')}\``,
  )
  console.log(`Load average ${loadavg()[0].toFixed(1)}\n`)
  if (!DAEMON) {
    console.log('| supervisor (`agent run`) | RSS (MiB) | anon / file | CPU % |')
    console.log('|---|---:|---:|---:|')
  } else {
    console.log(
      '| device | supervisor RSS (MiB) | anon / file | daemon RSS (MiB) | anon / file | sum of RSS (MiB) | together, shared pages once (MiB) | supervisor / daemon CPU % |',
    )
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
  }
  for (const [i, d] of specs.entries()) {
    const m = mem[i]
    if (m === undefined) throw new Error(`${d.name}: the supervisor exited (${children[i].exitCode})`)
    const dm = daemonMem[i]
    if (handedOver[i] && dm !== undefined) {
      console.log(
        `| ${d.name} | — | — | ${mib(dm.rss)} | ${mib(dm.rssAnon)} / ${mib(dm.rssFile)} | ${mib(dm.rss)} | ${mib(together[i])} | — / ${daemonCpu[i].toFixed(2)} |`,
      )
      continue
    }
    const head = `| ${d.name} | ${mib(m.rss)} | ${mib(m.rssAnon)} / ${mib(m.rssFile)} |`
    if (!DAEMON) console.log(`${head} ${cpu[i].toFixed(2)} |`)
    else if (dm === undefined) throw new Error(`${d.name}: the daemon exited`)
    else
      console.log(
        `${head} ${mib(dm.rss)} | ${mib(dm.rssAnon)} / ${mib(dm.rssFile)} | ${mib(m.rss + dm.rss)} | ${mib(together[i])} | ${cpu[i].toFixed(2)} / ${daemonCpu[i].toFixed(2)} |`,
      )
  }
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 1000))
  await rm(root, { recursive: true, force: true })
}

/** Whether `pid` runs `<bin> node start …` (a daemon; a supervisor runs `<bin> agent run … -- node start …`). */
async function isDaemon(pid: number): Promise<boolean> {
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')
  const i = argv.findIndex((a) => /[/\\]cli[/\\]bin\.[jt]s$/.test(a))
  return i >= 0 && argv[i + 1] === 'node' && argv[i + 2] === 'start'
}
