/**
 * The other process of an installed device: `llmesh agent run`, the supervisor the device unit
 * starts (packaging/systemd/llmesh-node.service), which runs `<root>/current/bin/llmesh node start`
 * and stays beside it. Measures its own RSS (anonymous / file pages) and CPU once settled, for each
 * `--device` variant side by side (bench/idle-devices.ts; here each is a supervisor, not a daemon).
 * The supervised child is a stub that sleeps, so only the supervisor is measured (the daemon is
 * bench/idle.ts's).
 *
 * Usage: npx node bench/idle-agent.ts [--settle-s 10] [--window-s 30] [--device "js=js MALLOC_ARENA_MAX=2 --optimize-for-size" …]
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { binsOf, deviceArg, parseDevice } from './idle-devices.ts'
import { cpuPercentOver, memoryOf, mib } from './proc-stats.ts'

const { values } = parseArgs({
  options: {
    'settle-s': { type: 'string', default: '10' },
    'window-s': { type: 'string', default: '30' },
    device: { type: 'string', multiple: true },
  },
})
const SETTLE_MS = Number(values['settle-s']) * 1000
const WINDOW_MS = Number(values['window-s']) * 1000
const specs = (values.device ?? ['js=js MALLOC_ARENA_MAX=2', 'js-flags=js MALLOC_ARENA_MAX=2 --optimize-for-size']).map(
  parseDevice,
)
const root = await mkdtemp(join(tmpdir(), 'bench-idle-agent-'))
const children: ChildProcess[] = []
try {
  const binOf = await binsOf(specs, root)
  // an agent root with one version whose launcher only sleeps
  const agentRoot = join(root, 'agents')
  await mkdir(join(agentRoot, '0.1.0', 'bin'), { recursive: true })
  await writeFile(join(agentRoot, '0.1.0', 'bin', 'llmesh'), '#!/bin/sh\nexec sleep 3600\n')
  await chmod(join(agentRoot, '0.1.0', 'bin', 'llmesh'), 0o755)
  await symlink('0.1.0', join(agentRoot, 'current'))
  for (const d of specs) {
    const args = [...d.flags, binOf(d.entry), 'agent', 'run', '--agent-root', agentRoot, '--', 'node', 'start']
    children.push(
      spawn(process.execPath, args, {
        stdio: 'ignore',
        env: { ...process.env, ...d.env, LLMESH_LOG_LEVEL: 'warn' },
      }),
    )
  }
  await new Promise((r) => setTimeout(r, SETTLE_MS))
  const cpu = await Promise.all(children.map((c) => cpuPercentOver(c.pid!, WINDOW_MS)))
  const mem = await Promise.all(children.map((c) => memoryOf(c.pid!)))
  console.log(
    `\nCommand: \`npx node bench/idle-agent.ts --settle-s ${SETTLE_MS / 1000} --window-s ${WINDOW_MS / 1000} ${specs.map(deviceArg).join(' ')}\``,
  )
  console.log(`Load average ${loadavg()[0].toFixed(1)}\n`)
  console.log('| supervisor (`agent run`) | RSS (MiB) | anon / file | CPU % |')
  console.log('|---|---:|---:|---:|')
  for (const [i, d] of specs.entries()) {
    const m = mem[i]
    if (m === undefined) throw new Error(`${d.name}: the supervisor exited (${children[i].exitCode})`)
    console.log(`| ${d.name} | ${mib(m.rss)} | ${mib(m.rssAnon)} / ${mib(m.rssFile)} | ${cpu[i].toFixed(2)} |`)
  }
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 1000))
  await rm(root, { recursive: true, force: true })
}
