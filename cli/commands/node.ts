/**
 * `llmesh node start`, `llmesh seed start` and `llmesh status`. The daemon itself is imported only
 * when a daemon starts (node-start.ts): `llmesh status` loads the typed API client and nothing else.
 */
import type { Command } from 'commander'
import type { DeviceStatus, ReleaseStatus } from '../../node/api/status.ts'
import { DEFAULT_API } from '../../node/constants.ts'
import { ApiClient, type StatusResponse } from '../api-client.ts'
import { action, type OutputOptions, print } from '../output.ts'

/** Options shared by `node start` and `seed start`. */
export interface StartOptions {
  fleet: string
  data: string
  listen?: string[]
  api?: string
  tags?: string
  mdns: boolean
  bootstrap?: string[]
  reportInterval?: string
  operatorKey?: string
  apiTokenFile?: string
  apiInsecure?: boolean
}

function collect(value: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), value]
}

function addStartOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--fleet <dir>', 'fleet directory (trust root and join secret)')
    .requiredOption('--data <dir>', 'data directory (identity, messages, models)')
    .option('--listen <multiaddr>', 'libp2p listen address (repeatable)', collect)
    .option('--api <host:port>', `local HTTP API address (default ${DEFAULT_API})`)
    .option('--tags <a,b>', 'device tags, comma-separated')
    .option('--no-mdns', 'disable mDNS discovery and the bonjour advertisement')
    .option('--bootstrap <multiaddr>', 'peer to dial (repeatable)', collect)
    .option('--report-interval <duration>', 'health report interval (e.g. 60s)')
    .option('--operator-key <file>', 'operator private key (PEM): this node signs rollout commands')
    .option(
      '--api-token-file <file>',
      'file holding the bearer token that non-loopback API callers must send (or env LLMESH_API_TOKEN)',
    )
    .option('--api-insecure', 'allow a non-loopback --api address without a token (anyone on the network can use it)')
}

interface StatusOptions extends OutputOptions {
  api?: string
  data?: string
}

/**
 * What `llmesh status` prints of `GET /status` (the server's types; the parts a terminal shows, so
 * a test can give only those).
 */
export type StatusView = Pick<StatusResponse, 'device' | 'peers' | 'models' | 'rollout' | 'loops'> & {
  releases: Array<Pick<ReleaseStatus, 'model' | 'version' | 'state'>>
  devices: Array<Omit<DeviceStatus, 'staged'>>
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

/** The human-readable form of `llmesh status`. */
export function humanStatus(s: StatusView): string {
  const ago = (t: number | null): string =>
    t === null ? '-' : `${Math.max(0, Math.round((Date.now() - t) / 1000))}s ago`
  const lines = [
    `device  ${s.device.id} (${s.device.role}, fleet ${s.device.fleet}) ${s.device.enrolled ? 'enrolled' : 'not enrolled'}`,
    `tags    ${s.device.tags.join(',') || '-'}`,
    `peers   ${s.peers.length}`,
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
            (v.deactivated ? `  deactivated: ${v.deactivated.version} (${v.deactivated.reason})` : ''),
        )),
    '',
    'devices:',
    ...s.devices.map(
      (d) =>
        `  ${d.id}  ${d.revoked ? 'revoked' : d.enrolled ? 'enrolled' : 'unenrolled'}  tags=${d.tags.join(',') || '-'}  versions=${d.active.join(',') || '-'}  last seen ${ago(d.last_seen)}`,
    ),
  ]
  return lines.join('\n')
}

async function start(role: 'node' | 'seed', opts: StartOptions): Promise<void> {
  const { start: run } = await import('./node-start.ts')
  await run(role, opts)
}

/** Registers `node`, `seed` and `status`. */
export function registerNode(program: Command): void {
  const node = program.command('node').description('run a device node')
  addStartOptions(node.command('start').description('start a node daemon (runs until SIGTERM/SIGINT)')).action(
    action((opts: StartOptions) => start('node', opts)),
  )
  const seed = program.command('seed').description('run the seed (a node holding the operator key)')
  addStartOptions(seed.command('start').description('start a seed daemon: auto-enrolls devices')).action(
    action((opts: StartOptions) => start('seed', opts)),
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
