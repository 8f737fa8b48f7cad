/**
 * The one-process steady state (`agent_handover`, node/agent-update/handover.ts; issue 17 goal 5):
 * the real `llmesh agent run` with LLMESH_AGENT_HANDOVER=true, as the device unit sets it, over
 * tiny sh launchers that record their PID, arguments and environment. With no version on probation
 * the launcher runs in the wrapper's own process (exec: same PID, no second process); a version on
 * probation runs as a child, is confirmed, and never gets the hand-back command; after a rollback
 * the previous version is exec'd. The daemon's side: `handBack` execs the wrapper's command line in
 * the same process, without the variables the wrapper sets anew.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { agentRunArgv, parseAgentRunArgs } from '../../cli/agent-run.ts'
import { AGENT_HANDBACK_ENV, handbackOf } from '../../node/agent-update/handover.ts'
import { readCurrent, readFailures, readPending, writePending } from '../../node/agent-update/layout.ts'
import { CLI_BIN, scaled, tmpDir, waitFor } from '../helpers/index.ts'

/** Records `$$`, version, ready file, hand-back command and arguments in `<launcher>.out`, then sleeps in the same process. */
const RECORD =
  'printf \'%s\\n\' "$$" "$LLMESH_AGENT_VERSION" "$LLMESH_AGENT_READY_FILE" "$LLMESH_AGENT_HANDBACK" "$*" > "$0.out.tmp"\nmv "$0.out.tmp" "$0.out"\n'
const READY = `#!/bin/sh\n${RECORD}: > "$LLMESH_AGENT_READY_FILE"\nexec sleep 60\n`
const SILENT = `#!/bin/sh\n${RECORD}exec sleep 60\n`

async function version(root: string, v: string, script: string): Promise<void> {
  await mkdir(join(root, v, 'bin'), { recursive: true })
  await writeFile(join(root, v, 'bin', 'llmesh'), script)
  await chmod(join(root, v, 'bin', 'llmesh'), 0o755)
}

interface Record {
  pid: number
  version: string
  readyFile: string
  handback: string
  args: string
}

async function recordOf(root: string, v: string): Promise<Record | null> {
  const text = await readFile(join(root, v, 'bin', 'llmesh.out'), 'utf8').catch(() => null)
  if (text === null) return null
  const [pid, version, readyFile, handback, args] = text.split('\n')
  return { pid: Number(pid), version, readyFile, handback, args }
}

/** `llmesh agent run --agent-root <root> [--agent-health-window …] -- x y` with the unit's LLMESH_AGENT_HANDOVER. */
function agentRun(root: string, extra: string[] = []) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LLMESH_')))
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI_BIN, 'agent', 'run', '--agent-root', root, ...extra, '--', 'x', 'y'],
    { env: { ...env, LLMESH_LOG_FORMAT: 'json', LLMESH_AGENT_HANDOVER: 'true' }, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString('utf8')
  })
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()))
  return { child, exited, stderr: () => stderr }
}

/** The process's children (every thread's), from /proc. */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  return text
    .split(' ')
    .filter((s) => s.trim() !== '')
    .map(Number)
}

const until = (what: string, fn: () => Promise<boolean>, detail: () => string) =>
  waitFor(fn, { timeoutMs: scaled(20_000), what, detail: () => detail().slice(-2000) })

test('no version on probation: the wrapper execs the daemon, one process', { timeout: scaled(60_000) }, async (t) => {
  const root = await tmpDir(t)
  await version(root, '1.0.0', READY)
  await symlink('1.0.0', join(root, 'current'))
  const s = agentRun(root)
  t.after(async () => {
    s.child.kill('SIGKILL')
    await s.exited
  })
  await until('the daemon started', async () => (await recordOf(root, '1.0.0')) !== null, s.stderr)
  const r = (await recordOf(root, '1.0.0')) as Record
  assert.equal(r.pid, s.child.pid, 'the daemon runs in the process the wrapper was (exec, same PID)')
  assert.equal(r.version, '1.0.0')
  assert.equal(r.readyFile, join(root, `.agent-ready-${s.child.pid}`))
  assert.equal(r.args, 'x y')
  assert.deepEqual(JSON.parse(r.handback), [
    join(root, '1.0.0', 'bin', 'llmesh'),
    ...['agent', 'run', '--agent-root', root, '--', 'x', 'y'],
  ])
  // the launcher exec'd `sleep` in turn: the process is the daemon's now, and it has no child
  await until(
    'the launcher replaced by its sleep',
    async () => (await readFile(`/proc/${s.child.pid}/cmdline`, 'utf8')).startsWith('sleep\0'),
    s.stderr,
  )
  assert.deepEqual(await childrenOf(s.child.pid as number), [])
  s.child.kill('SIGTERM')
  await s.exited
  assert.equal(s.child.signalCode, 'SIGTERM', 'the signal reaches the daemon itself')
})

test('a version on probation runs as the wrapper’s child, without the hand-back; once confirmed it runs on', {
  timeout: scaled(60_000),
}, async (t) => {
  const root = await tmpDir(t)
  await version(root, '1.0.0', READY)
  await version(root, '1.0.1', READY)
  await symlink('1.0.1', join(root, 'current'))
  await writePending(root, { version: '1.0.1', previous: '1.0.0' })
  const s = agentRun(root)
  t.after(async () => {
    s.child.kill('SIGKILL')
    await s.exited
  })
  await until('the confirmation', async () => (await readPending(root)) === null, s.stderr)
  const r = (await recordOf(root, '1.0.1')) as Record
  assert.notEqual(r.pid, s.child.pid)
  assert.deepEqual(await childrenOf(s.child.pid as number), [r.pid], 'the wrapper watches its child')
  assert.equal(r.handback, '', 'a child on probation must not exec the wrapper itself')
  assert.equal(await readCurrent(root), '1.0.1')
  s.child.kill('SIGTERM')
  await s.exited
  assert.throws(() => process.kill(r.pid, 0), { code: 'ESRCH' }, 'the wrapper passed SIGTERM on to its child')
})

test('a rolled-back version: the previous one is exec’d in the wrapper’s process', {
  timeout: scaled(60_000),
}, async (t) => {
  const root = await tmpDir(t)
  await version(root, '1.0.0', READY)
  await version(root, '1.0.1', SILENT)
  await symlink('1.0.1', join(root, 'current'))
  await writePending(root, { version: '1.0.1', previous: '1.0.0' })
  const s = agentRun(root, ['--agent-health-window', '1s'])
  t.after(async () => {
    s.child.kill('SIGKILL')
    await s.exited
  })
  await until('the previous version back', async () => (await recordOf(root, '1.0.0')) !== null, s.stderr)
  assert.equal((await recordOf(root, '1.0.0'))?.pid, s.child.pid)
  assert.notEqual((await recordOf(root, '1.0.1'))?.pid, s.child.pid)
  assert.equal(await readCurrent(root), '1.0.0')
  assert.match((await readFailures(root))[0]?.reason ?? '', /not ready within 1000 ms/)
})

test('handBack: the daemon execs the wrapper’s command line in its own process, without the wrapper’s variables', {
  timeout: scaled(30_000),
}, async (t) => {
  const dir = await tmpDir(t)
  const wrapper = join(dir, 'wrapper')
  await writeFile(wrapper, `#!/bin/sh\n${RECORD}`)
  await chmod(wrapper, 0o755)
  const daemon = `import { handBack } from ${JSON.stringify(join(import.meta.dirname, '../../node/agent-update/handover.ts'))}\nhandBack()\nprocess.exit(75)\n`
  const child = spawn(process.execPath, ['--input-type=module', '-e', daemon], {
    env: {
      PATH: process.env.PATH,
      LLMESH_AGENT_VERSION: '1.0.0',
      LLMESH_AGENT_READY_FILE: join(dir, 'ready'),
      [AGENT_HANDBACK_ENV]: JSON.stringify([wrapper, 'agent', 'run', '--', 'node', 'start']),
    },
    stdio: 'inherit',
  })
  const code = await new Promise<number | null>((ok) => child.once('exit', (c) => ok(c)))
  assert.equal(code, 0, 'the wrapper ran, not the exit(75) after handBack')
  const text = await readFile(`${wrapper}.out`, 'utf8')
  assert.deepEqual(text.split('\n').slice(0, 5), [String(child.pid), '', '', '', 'agent run -- node start'])
  assert.equal(handbackOf({ [AGENT_HANDBACK_ENV]: '{"not":"a list"}' }), null)
  assert.equal(handbackOf({ [AGENT_HANDBACK_ENV]: '["a\\u0000b"]' }), null)
  assert.equal(handbackOf({}), null)
})

test('the hand-back command line is agent run’s own, every flag kept, the launcher’s arguments after --', () => {
  const argv = [
    '--config',
    '/etc/llmesh/llmesh.yaml',
    '--agent-health-window=30s',
    '--',
    'node',
    'start',
    '--data',
    'd',
  ]
  const { flags, args } = parseAgentRunArgs(argv)
  const back = agentRunArgv(flags, args)
  assert.deepEqual(back, [
    ...['agent', 'run', '--config', '/etc/llmesh/llmesh.yaml', '--agent-health-window', '30s'],
    ...['--', 'node', 'start', '--data', 'd'],
  ])
  // parsed again, the same flags and arguments
  assert.deepEqual(parseAgentRunArgs(back.slice(2)), { flags, args })
})
