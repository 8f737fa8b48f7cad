/**
 * Devices that run under the agent wrapper (`llmesh agent run`) for the agent-update tests: an
 * agent root laid out like /opt/llmesh (`<root>/0.9.0`, `current -> 0.9.0`) whose versions are
 * tiny launchers running this checkout's daemon, packages built like `npm run package` lays them
 * out (one top directory), and the device's /status and /rollout read through its node.json.
 * Loopback only, mDNS off; each device listens on a fixed port so peers can redial it after it
 * restarts into another version. A device started with `handover` runs as the device unit runs it
 * (LLMESH_AGENT_HANDOVER=true: the wrapper execs the daemon when no version is on probation).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { NODE_INFO_FILE } from '../../node/constants.ts'
import type { ReleaseRolloutJson } from '../../node/rollout/routes.ts'
import { CLI_BIN, scaled } from '../helpers/index.ts'
import { childPids } from '../helpers/processes.ts'

const run = promisify(execFile)

/** A launcher that runs this checkout's CLI with this Node. */
export const WORKING = `#!/bin/sh\nexec "${process.execPath}" --disable-warning=ExperimentalWarning "${CLI_BIN}" "$@"\n`
/** A launcher that exits at start. */
export const BROKEN = (v: string) => `#!/bin/sh\necho "agent ${v}: broken on purpose" >&2\nexit 3\n`

/** Writes `<dir>/bin/llmesh` with `script`. */
export async function launcher(dir: string, script: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true })
  await writeFile(join(dir, 'bin', 'llmesh'), script)
  await chmod(join(dir, 'bin', 'llmesh'), 0o755)
}

/** Builds `llmesh-<v>-linux-<arch>.tar.gz` (one top directory, as `npm run package` lays it out). */
export async function fakePackage(home: string, version: string, script: string, arch = process.arch): Promise<string> {
  const top = `llmesh-${version}-linux-${arch}`
  const src = join(home, 'build', version)
  await launcher(join(src, top), script)
  await writeFile(join(src, top, 'MANIFEST.json'), JSON.stringify({ version, arch }))
  const out = join(home, `${top}.tar.gz`)
  await run('tar', ['-czf', out, '-C', src, top])
  return out
}

/** The agent part of a device's /status. */
export interface AgentStatus {
  version: string
  state: string
  target?: string
  reason?: string
  failures: Array<{ version: string; reason: string }>
}

/** A device under the wrapper. */
export interface AgentDevice {
  name: string
  root: string
  data: string
  port: number
  /** `/status`'s agent part, undefined while the daemon is not answering. */
  agent(): Promise<AgentStatus | undefined>
  /** `GET /rollout/<model>/<version>`, undefined while the daemon is not answering. */
  release(model: string, version: string): Promise<ReleaseRolloutJson | undefined>
  /** The daemon's peer id (from node.json). */
  peerId(): Promise<string>
  stderr(): string
  /** Whether the device is one process: the wrapper's PID runs `node start` and has no child (no model here). */
  oneProcess(): Promise<boolean>
  stop(): Promise<void>
}

/** Starts `llmesh agent run -- node start …` over a fresh root holding 0.9.0. */
export async function startAgentDevice(
  home: string,
  opts: { name: string; fleetDir: string; port: number; bootstrap: string[]; tags?: string[]; handover?: boolean },
): Promise<AgentDevice> {
  const root = join(home, `${opts.name}-opt-llmesh`)
  await launcher(join(root, '0.9.0'), WORKING)
  await symlink('0.9.0', join(root, 'current'))
  const data = join(home, `${opts.name}-data`)
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LLMESH_')))
  const args = [
    CLI_BIN,
    'agent',
    'run',
    '--agent-root',
    root,
    '--agent-health-window',
    `${Math.round(scaled(90_000) / 1000)}s`,
    '--',
    'node',
    'start',
    '--fleet',
    opts.fleetDir,
    '--data',
    data,
    '--api',
    '127.0.0.1:0',
    '--listen',
    `/ip4/127.0.0.1/tcp/${opts.port}`,
    '--no-mdns',
    ...opts.bootstrap.flatMap((b) => ['--bootstrap', b]),
    '--report-interval',
    '2s',
    '--agent-root',
    root,
    ...(opts.tags?.length ? ['--tags', opts.tags.join(',')] : []),
  ]
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: home,
    env: { ...env, LLMESH_LOG_LEVEL: 'warn', ...(opts.handover === true ? { LLMESH_AGENT_HANDOVER: 'true' } : {}) },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.on('data', (b: Buffer) => {
    stderr = `${stderr}${b}`.slice(-16000)
  })
  const exited = new Promise((ok) => child.once('exit', ok))
  const api = async (path: string): Promise<unknown> => {
    assert.equal(child.exitCode, null, `${opts.name}'s wrapper exited:\n${stderr}`)
    const text = await readFile(join(data, NODE_INFO_FILE), 'utf8').catch(() => '')
    if (text === '') return undefined
    const info = JSON.parse(text) as { api: string }
    const res = await fetch(`${info.api}${path}`).catch(() => undefined)
    return res?.ok === true ? await res.json() : undefined
  }
  return {
    name: opts.name,
    root,
    data,
    port: opts.port,
    agent: async () => ((await api('/status')) as { agent?: AgentStatus } | undefined)?.agent,
    release: async (model, version) => (await api(`/rollout/${model}/${version}`)) as ReleaseRolloutJson | undefined,
    peerId: async () => (JSON.parse(await readFile(join(data, NODE_INFO_FILE), 'utf8')) as { peerId: string }).peerId,
    stderr: () => stderr,
    oneProcess: async () => {
      const argv = (await readFile(`/proc/${child.pid}/cmdline`, 'utf8').catch(() => '')).split('\0')
      const i = argv.indexOf(CLI_BIN)
      const daemon = i >= 0 && argv[i + 1] === 'node' && argv[i + 2] === 'start'
      return daemon && (await childPids('', child.pid)).length === 0
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}
