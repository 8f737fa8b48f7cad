/**
 * `llmesh node start`, `llmesh seed start` and `llmesh status`.
 * A started daemon logs its listen addresses and API URL (pino JSON on stderr, msg
 * `llmesh node started`) and writes `<data>/node.json`; SIGTERM/SIGINT stop it cleanly (exit 0).
 */
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { checkApiExposure } from '../../node/api/exposure.ts'
import type { ModelStatus } from '../../node/api/status.ts'
import { DEFAULT_API } from '../../node/constants.ts'
import { Daemon, type DaemonInit } from '../../node/daemon.ts'
import { cliDeviceServices } from '../../node/device-services.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { type DownloadStatus, formatDownload } from '../../node/install/progress.ts'
import { createLogger } from '../../node/logger.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { callApi, nodeUrl } from '../api-client.ts'
import { action, CliError, print } from '../output.ts'

/** Options shared by `node start` and `seed start`. */
interface StartOptions {
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

/** Parses `500ms`, `30s`, `5m`, `2h`, `1d` or a number of ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim())
  if (m === null) throw new CliError(`invalid duration ${text} (use e.g. 30s, 5m, 1h)`, 'ERR_INVALID_INPUT')
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms']
  return Math.round(Number(m[1]) * unit)
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

async function runUntilSignal(daemon: Daemon, log: ReturnType<typeof createLogger>): Promise<void> {
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'stopping')
    const force = setTimeout(() => {
      log.warn('stop timed out, exiting')
      process.exit(1)
    }, 15_000)
    force.unref()
    daemon.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'stop failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception')
    stop('uncaughtException')
  })
  process.on('unhandledRejection', (err) => {
    log.error({ err }, 'unhandled rejection')
  })
  await daemon.start()
}

/** The API token from `--api-token-file` or `LLMESH_API_TOKEN` (none: no auth). */
async function apiToken(opts: StartOptions): Promise<string | undefined> {
  const token =
    opts.apiTokenFile !== undefined ? (await readFile(opts.apiTokenFile, 'utf8')).trim() : process.env.LLMESH_API_TOKEN
  if (token === undefined || (token === '' && opts.apiTokenFile === undefined)) return undefined // LLMESH_API_TOKEN= : none
  if (token.length < 16) throw new CliError('the API token must be at least 16 characters', 'ERR_INVALID_INPUT')
  return token
}

async function start(role: 'node' | 'seed', opts: StartOptions): Promise<void> {
  const log = createLogger({ base: { role } })
  const token = await apiToken(opts)
  // refuse an API open to the network before anything starts (the daemon checks again)
  checkApiExposure({ address: opts.api ?? DEFAULT_API, token, insecure: opts.apiInsecure })
  const fleet = await loadFleet(opts.fleet)
  const init: DaemonInit = {
    fleet: { id: fleet.root.fleet, psk: fleet.swarmKey, trust: fleet.root, chain: fleet.chain },
    dataDir: opts.data,
    listen: opts.listen,
    api: opts.api,
    tags:
      opts.tags === undefined
        ? []
        : opts.tags
            .split(',')
            .map((t) => t.trim())
            .filter((t) => t !== ''),
    mdns: opts.mdns,
    bootstrap: opts.bootstrap,
    reportIntervalMs: opts.reportInterval === undefined ? undefined : parseDuration(opts.reportInterval),
    apiToken: token,
    apiInsecure: opts.apiInsecure === true,
    logger: log,
  }
  let daemon: Daemon
  if (role === 'seed') {
    if (fleet.operatorSigner === undefined) {
      throw new CliError(`${opts.fleet} holds no operator key: a seed needs it`, 'ERR_NO_OPERATOR_KEY')
    }
    // distribution, observing controller, enroller and the operator's routes (seed/seed-daemon.ts)
    daemon = createSeedDaemon({ ...init, signer: fleet.operatorSigner })
  } else {
    // installer, inference, health reports, rollout controller and their routes (node/device-services.ts)
    const composed = await cliDeviceServices({ operatorKeyFile: opts.operatorKey })
    daemon = new Daemon({ ...init, services: composed.services, routes: composed.routes })
  }
  await runUntilSignal(daemon, log)
}

interface StatusOptions {
  api?: string
  data?: string
  json?: boolean
}

/** What `GET /status` returns, as far as `llmesh status` prints it. */
export interface StatusJson {
  device: { id: string; tags: string[]; enrolled: boolean; role: string; fleet: string }
  peers: string[]
  releases: Array<{ model: string; version: string; state: string }>
  models: Record<string, ModelStatus & { downloading?: DownloadStatus | null }>
  devices: Array<{
    id: string
    tags: string[]
    enrolled: boolean
    revoked: boolean
    active: string[]
    last_seen: number | null
  }>
  /** The rollout engine's section: releases failing now (an exception, or conflicted). */
  rollout?: { errors?: Array<{ model: string; version: string; code: string; message: string; count: number }> }
  /** Periodic loops: failures per loop since start, and the items failing now. */
  loops?: {
    errors: Record<string, number>
    failing: Array<{ loop: string; item: string; code: string; message: string }>
  }
}

/** Failing releases and loop items, for the top of `llmesh status`: what needs the operator. */
function problemLines(s: StatusJson): string[] {
  const lines = [
    ...(s.rollout?.errors ?? []).map(
      (e) => `  release ${e.model}@${e.version}  ${e.code}: ${e.message} (${e.count}×; other releases go on)`,
    ),
    ...(s.loops?.failing ?? []).map((f) => `  loop ${f.loop}  ${f.item}  ${f.code}: ${f.message}`),
  ]
  return lines.length === 0 ? [] : ['problems:', ...lines, '']
}

/** The human-readable form of `llmesh status`. */
export function humanStatus(s: StatusJson): string {
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
            (v.deactivated ? `  deactivated: ${v.deactivated.version} (${v.deactivated.reason})` : '') +
            (v.downloading ? `\n    ${formatDownload(v.downloading)}` : ''),
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
        const url = await nodeUrl(opts)
        const status = (await callApi(`${url}/status`, undefined, { timeoutMs: 10_000 })) as StatusJson
        print(opts, status, humanStatus)
      }),
    )
}
