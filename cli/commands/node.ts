/**
 * `llmesh node start`, `llmesh seed start` and `llmesh status`. The start commands' flags come from
 * the one option table (node/config/options.ts, applied flag > env > file > default); the daemon
 * itself is imported only when a daemon starts (node-start.ts): `llmesh status` loads the typed
 * API client and nothing else.
 */
import type { Command } from 'commander'
import type { DeviceStatus, ReleaseStatus } from '../../node/api/status.ts'
import { DEFAULT_API } from '../../node/constants.ts'
import { ApiClient, type StatusResponse } from '../api-client.ts'
import { addConfigOptions, flagsGiven, loadConfig } from '../config-flags.ts'
import { action, formatDownload, type OutputOptions, print } from '../output.ts'

interface StatusOptions extends OutputOptions {
  api?: string
  data?: string
}

/**
 * What `llmesh status` prints of `GET /status` (the server's types; the parts a terminal shows, so
 * a test can give only those).
 */
export type StatusView = Pick<StatusResponse, 'device' | 'peers' | 'models' | 'rollout' | 'loops'> & {
  agent?: StatusResponse['agent']
  releases: Array<Pick<ReleaseStatus, 'model' | 'version' | 'state'>>
  devices: Array<Pick<DeviceStatus, 'id' | 'membership' | 'tags' | 'active' | 'last_seen'>>
}

/** Failing releases and loop items, for the top of `llmesh status`: what needs the operator. */
function problemLines(s: StatusView): string[] {
  const lines = [
    ...(s.rollout?.errors ?? []).map(
      (e) => `  release ${e.model}@${e.version}  ${e.code}: ${e.message} (${e.count}×; other releases go on)`,
    ),
    ...(s.loops?.failing ?? []).map((f) => `  loop ${f.loop}  ${f.item}  ${f.code}: ${f.message}`),
  ]
  return lines.length === 0 ? [] : ['problems:', ...lines, '']
}

/** `agent   0.9.1 (updates on; 0.9.2 rolled back: not ready within 120000 ms)`. */
function agentLine(a: NonNullable<StatusView['agent']>): string {
  const last = a.failures.at(-1)
  const state =
    a.state === 'idle' ? '' : `; ${a.state}${a.target ? ` ${a.target}` : ''}${a.reason ? `: ${a.reason}` : ''}`
  return `agent   ${a.version} (updates ${a.update ? 'on' : 'off'}${state}${last ? `; ${last.version} rolled back: ${last.reason}` : ''})`
}

/** The human-readable form of `llmesh status`. */
export function humanStatus(s: StatusView): string {
  const ago = (t: number | null): string =>
    t === null ? '-' : `${Math.max(0, Math.round((Date.now() - t) / 1000))}s ago`
  const lines = [
    `device  ${s.device.id} (${s.device.role}, fleet ${s.device.fleet}) ${s.device.enrolled ? 'enrolled' : 'not enrolled'}`,
    `tags    ${s.device.tags.join(',') || '-'}`,
    `peers   ${s.peers.length}`,
    ...(s.agent === undefined ? [] : [agentLine(s.agent)]),
    '',
    ...problemLines(s),
    'releases:',
    ...(s.releases.length === 0 ? ['  (none)'] : s.releases.map((r) => `  ${r.model}@${r.version}  ${r.state}`)),
    '',
    'models:',
    ...(Object.keys(s.models).length === 0
      ? ['  (none)']
      : Object.entries(s.models).map(
          ([m, v]) =>
            `  ${m}  active=${v.active ?? '-'} previous=${v.previous ?? '-'} staged=${v.staged.join(',') || '-'}` +
            (v.deactivated ? `  deactivated: ${v.deactivated.version} (${v.deactivated.reason})` : '') +
            (v.downloading ? `\n    ${formatDownload(v.downloading)}` : ''),
        )),
    '',
    'devices:',
    ...s.devices.map(
      (d) =>
        `  ${d.id}  ${d.membership}  tags=${d.tags.join(',') || '-'}  versions=${d.active.join(',') || '-'}  last seen ${ago(d.last_seen)}`,
    ),
  ]
  return lines.join('\n')
}

/** Resolves the configuration (flags typed on `cmd`) and starts the daemon (loaded only now). */
async function start(role: 'node' | 'seed', cmd: Command): Promise<void> {
  const config = await loadConfig(role, flagsGiven(cmd))
  const { start: run } = await import('./node-start.ts')
  await run(role, config.values)
}

/** Registers `node`, `seed` and `status`. */
export function registerNode(program: Command): void {
  const node = program.command('node').description('run a device node')
  addConfigOptions(node.command('start').description('start a node daemon (runs until SIGTERM/SIGINT)')).action(
    action((_opts: unknown, cmd: Command) => start('node', cmd)),
  )
  const seed = program.command('seed').description('run the seed (a node holding the operator key)')
  addConfigOptions(seed.command('start').description('start a seed daemon: auto-enrolls devices')).action(
    action((_opts: unknown, cmd: Command) => start('seed', cmd)),
  )
  program
    .command('status')
    .description('what a node knows of the fleet: devices, tags, versions, last seen')
    .option('--api <url>', `node API (default http://${DEFAULT_API})`)
    .option('--data <dir>', 'read the API address from <dir>/node.json')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: StatusOptions) => {
        const client = await ApiClient.connect(opts, { timeoutMs: 10_000 })
        print(opts, await client.status(), humanStatus)
      }),
    )
}
