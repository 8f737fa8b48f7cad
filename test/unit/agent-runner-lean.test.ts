/**
 * The lean supervisor (`llmesh agent run`, cli/agent-run.ts; issue 17 goal 5): spawned as the
 * device unit runs it, it loads none of the heavy modules again (no package from node_modules at
 * all: zod, yaml, pino, semver, commander, libp2p, fastify; no protocol or daemon module), while its
 * configuration is still the full resolver's (a short-lived child: a file value is applied, a bad
 * file refused with the resolver's error and exit 2). Its pieces: the semver-free version check
 * agrees with protocols/version.ts, and its logger writes pino's lines.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { chmod, lstat, mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import pino from 'pino'
import { createAgentLog } from '../../node/agent-update/log.ts'
import { isVersionName } from '../../node/agent-update/version-name.ts'
import { isVersion } from '../../protocols/version.ts'
import { CLI_BIN, scaled, tmpDir, waitFor } from '../helpers/index.ts'
import { writeLoadTrace } from '../helpers/load-trace.ts'

/** A launcher that reports ready and sleeps. */
const READY = '#!/bin/sh\n: > "$LLMESH_AGENT_READY_FILE"\nexec sleep 60\n'

async function agentRoot(dir: string): Promise<string> {
  const root = join(dir, 'opt')
  await mkdir(join(root, '1.0.0', 'bin'), { recursive: true })
  await writeFile(join(root, '1.0.0', 'bin', 'llmesh'), READY)
  await chmod(join(root, '1.0.0', 'bin', 'llmesh'), 0o755)
  await symlink('1.0.0', join(root, 'current'))
  return root
}

/** Spawns `llmesh agent run <args>` (node flags first); its stderr is collected. */
function supervisor(nodeFlags: string[], args: string[], cwd: string) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LLMESH_')))
  const child: ChildProcess = spawn(process.execPath, [...nodeFlags, CLI_BIN, 'agent', 'run', ...args], {
    cwd,
    env: { ...env, LLMESH_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString('utf8')
  })
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)))
  return { child, exited, stderr: () => stderr }
}

const logLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)

test('agent run loads no package and no daemon or protocol module, and starts the agent', {
  timeout: scaled(60_000),
}, async (t) => {
  const dir = await tmpDir(t)
  const root = await agentRoot(dir)
  const hook = await writeLoadTrace(dir)
  const s = supervisor(['--import', hook], ['--agent-root', root, '--', 'node', 'start'], dir)
  t.after(async () => {
    if (s.child.exitCode === null) s.child.kill('SIGKILL')
  })
  const readyFile = join(root, `.agent-ready-${s.child.pid}`)
  await waitFor(async () => (await lstat(readyFile).catch(() => null)) !== null, {
    timeoutMs: 20_000,
    what: 'the agent started under the supervisor',
    detail: () => s.stderr().slice(-2000),
  })
  s.child.kill('SIGTERM')
  await s.exited
  const started = logLines(s.stderr()).find((l) => l.msg === 'starting agent')
  assert.equal(started?.version, '1.0.0')
  assert.equal(started?.role, 'agent-run')
  const mods = s
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('LOAD '))
    .map((l) => l.slice(5))
  assert.ok(
    mods.some((m) => m.endsWith('/cli/agent-run.ts')),
    `the hook saw the supervisor load (${mods.join(', ')})`,
  )
  const packages = mods.filter((m) => m.includes('/node_modules/'))
  assert.deepEqual(packages, [], 'no package from node_modules (zod, yaml, pino, semver, commander, libp2p, …)')
  const heavy = mods.filter((m) => /\/protocols\/|\/seed\/|\/node\/(config|mesh|daemon|api|store|inference)\//.test(m))
  assert.deepEqual(heavy, [], 'no protocol, configuration or daemon module')
  assert.ok(!mods.some((m) => m.endsWith('/cli/program.ts')), 'not through the command table')
})

test('agent run takes its settings from the configuration file, and refuses a bad one as the resolver does', {
  timeout: scaled(60_000),
}, async (t) => {
  const dir = await tmpDir(t)
  await agentRoot(dir)
  const conf = join(dir, 'etc', 'llmesh.yaml')
  await mkdir(join(dir, 'etc'))
  // a relative agent_root is taken from the file's directory
  await writeFile(conf, 'agent_root: ../opt\nagent_health_window: 30s\nname: dev1\n')
  const ok = supervisor([], ['--config', conf, '--', 'node', 'start'], '/')
  t.after(() => {
    if (ok.child.exitCode === null) ok.child.kill('SIGKILL')
  })
  await waitFor(() => logLines(ok.stderr()).some((l) => l.msg === 'starting agent'), {
    timeoutMs: 20_000,
    what: 'the agent started from the file’s agent_root',
    detail: () => ok.stderr().slice(-2000),
  })
  const started = logLines(ok.stderr()).find((l) => l.msg === 'starting agent')
  assert.equal(started?.entry, join(dir, 'opt', '1.0.0', 'bin', 'llmesh'))
  ok.child.kill('SIGTERM')
  await ok.exited

  await writeFile(conf, 'agent_root: ../opt\nagent_health_windw: 30s\n')
  const bad = supervisor([], ['--config', conf, '--', 'node', 'start'], '/')
  assert.equal(await bad.exited, 2, bad.stderr())
  assert.match(bad.stderr(), /llmesh\.yaml:2: unknown option "agent_health_windw".*\[ERR_CONFIG\]/)
  const flag = supervisor([], ['--agent-health-window', 'soon', '--', 'node', 'start'], dir)
  assert.equal(await flag.exited, 2, flag.stderr())
  assert.match(flag.stderr(), /--agent-health-window: agent_health_window must be a duration.*\[ERR_CONFIG\]/)
  const unknown = supervisor([], ['--agnt-root', dir], dir)
  assert.equal(await unknown.exited, 2, unknown.stderr())
  assert.match(unknown.stderr(), /--agnt-root.*\[ERR_USAGE\]/)
  // --help stays with the command table (commander prints the usage, on stdout)
  const help = await new Promise<{ code: number | null; out: string }>((ok) =>
    execFile(process.execPath, [CLI_BIN, 'agent', 'run', '--help'], (err, out) =>
      ok({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), out }),
    ),
  )
  assert.equal(help.code, 0)
  assert.match(help.out, /Usage: llmesh agent run \[options\] \[args\.\.\.\]/)
})

test('the semver-free version check agrees with protocols/version.ts', () => {
  const cases = [
    '1.0.0',
    '0.9.1',
    '10.20.30',
    '1.0.0-rc.1',
    '1.0.0-0.3.7',
    '1.0.0-x.7.z.92',
    '1.0.0-alpha-a.b-c',
    '1.0.0+gguf-q4_0',
    '1.0.0-rc.1+build.5',
    '1.3.0+gguf-q4_K_M',
    '01.0.0',
    '1.00.0',
    '1.0.0-01',
    '1.0.0-',
    '1.0.0+',
    '1.0.0+a..b',
    'v1.0.0',
    '=1.0.0',
    ' 1.0.0',
    '1.0.0 ',
    '1.0.0\n',
    '1.0',
    '1.0.0.0',
    '',
    'current',
    '.agent-pending.json',
    '9007199254740991.0.0',
    '9007199254740992.0.0',
    '1.0.0-99999999999999999999',
    `1.0.0-${'a'.repeat(130)}`,
    `1.0.0+${'b'.repeat(121)}`,
    `1.0.0+${'b'.repeat(122)}`,
  ]
  // and random strings over the grammar's alphabet
  const alphabet = '0123456789.-+_aZv '
  let seed = 17
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed / 2 ** 31
  }
  for (let i = 0; i < 5000; i++) {
    const n = 5 + Math.floor(rand() * 10)
    let s = ''
    for (let j = 0; j < n; j++) s += alphabet[Math.floor(rand() * alphabet.length)]
    cases.push(rand() < 0.5 ? `1.2.${s}` : s)
  }
  let valid = 0
  for (const v of cases) {
    assert.equal(isVersionName(v), isVersion(v), JSON.stringify(v))
    if (isVersion(v)) valid++
  }
  assert.ok(valid >= 15, `the cases include valid versions (${valid})`)
})

test("the supervisor's logger writes pino's lines", () => {
  const ours: string[] = []
  const theirs: string[] = []
  const mine = createAgentLog({ base: { role: 'agent-run' }, level: 'info', write: (l) => ours.push(l) })
  const ref = pino(
    { name: 'llmesh', level: 'info', base: { pid: process.pid, role: 'agent-run' } },
    { write: (l: string) => theirs.push(l) },
  )
  const err = Object.assign(new Error('spawn /x EACCES'), { code: 'EACCES', errno: -13 })
  for (const log of [mine, ref]) {
    log.info({ version: '1.0.0', entry: '/opt/llmesh/1.0.0/bin/llmesh' }, 'starting agent')
    log.error({ err, version: '1.0.1' }, 'agent failed to start')
  }
  const noTime = (l: string) => ({ ...(JSON.parse(l) as object), time: 0 })
  assert.equal(ours.length, 2)
  assert.deepEqual(ours.map(noTime), theirs.map(noTime))
  assert.deepEqual(
    ours.map((l) => Object.keys(JSON.parse(l))),
    theirs.map((l) => Object.keys(JSON.parse(l))),
  )
  const quiet: string[] = []
  createAgentLog({ level: 'warn', write: (l) => quiet.push(l) }).info({}, 'dropped')
  assert.deepEqual(quiet, [])
  const pretty: string[] = []
  createAgentLog({ format: 'pretty', base: { role: 'agent-run' }, write: (l) => pretty.push(l) }).warn(
    { version: '1.0.1' },
    'agent version rolled back',
  )
  assert.match(pretty[0], /WARN {2}agent-run: agent version rolled back {2}version=1\.0\.1\n$/)
})
