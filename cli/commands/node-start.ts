/**
 * The daemon side of `llmesh node start` and `llmesh seed start`, imported only by those commands
 * (the daemon, libp2p and sigstore take most of a second to load; `llmesh status` never pays it).
 * A started daemon logs its listen addresses and API URL (pino JSON on stderr, msg
 * `llmesh node started`) and writes `<data>/node.json`; SIGTERM/SIGINT stop it cleanly (exit 0).
 */
import { readFile } from 'node:fs/promises'
import { checkApiExposure } from '../../node/api/exposure.ts'
import { DEFAULT_API } from '../../node/constants.ts'
import { Daemon, type DaemonInit } from '../../node/daemon.ts'
import { cliDeviceServices } from '../../node/device-services.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { createLogger } from '../../node/logger.ts'
import { parseDuration } from '../../protocols/rollout/policy-yaml.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { CliError, UsageError } from '../output.ts'
import type { StartOptions } from './node.ts'

/** The policy's duration parser (`30s`, `1h30m`, …), a bad value a usage error naming the flag. */
function duration(flag: string, text: string): number {
  try {
    return parseDuration(text)
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`, 'ERR_INVALID_INPUT')
  }
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

/** Starts a node or seed daemon and runs it until a signal. */
export async function start(role: 'node' | 'seed', opts: StartOptions): Promise<void> {
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
    reportIntervalMs:
      opts.reportInterval === undefined ? undefined : duration('--report-interval', opts.reportInterval),
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
