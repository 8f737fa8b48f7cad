/**
 * The daemon side of `llmesh node start` and `llmesh seed start`, imported only by those commands
 * (the daemon, libp2p and sigstore take most of a second to load; `llmesh status` never pays it).
 * A started daemon logs its listen addresses and API URL (pino JSON on stderr, msg
 * `llmesh node started`) and writes `<data>/node.json`; SIGTERM/SIGINT stop it cleanly (exit 0).
 */
import { readFile } from 'node:fs/promises'
import { checkApiExposure } from '../../node/api/exposure.ts'
import type { ConfigValues } from '../../node/config/resolve.ts'
import { Daemon, type DaemonInit } from '../../node/daemon.ts'
import { cliDeviceServices } from '../../node/device-services.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { createLogger } from '../../node/logger.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { CliError, UsageError } from '../output.ts'

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

/** The API token from `api_token_file` or `api_token` (`LLMESH_API_TOKEN`); none: no auth. */
async function apiToken(c: ConfigValues): Promise<string | undefined> {
  const token = c.api_token_file !== undefined ? (await readFile(c.api_token_file, 'utf8')).trim() : c.api_token
  if (token === undefined) return undefined
  if (token.length < 16) throw new UsageError('the API token must be at least 16 characters', 'ERR_INVALID_INPUT')
  return token
}

/** Starts a node or seed daemon with the resolved configuration and runs it until a signal. */
export async function start(role: 'node' | 'seed', c: ConfigValues): Promise<void> {
  const log = createLogger({ base: { role }, level: c.log_level })
  const token = await apiToken(c)
  // refuse an API open to the network before anything starts (the daemon checks again)
  checkApiExposure({ address: c.api, token, insecure: c.api_insecure })
  const fleet = await loadFleet(c.fleet)
  const init: DaemonInit = {
    fleet: { id: fleet.root.fleet, psk: fleet.swarmKey, trust: fleet.root, chain: fleet.chain },
    dataDir: c.data,
    listen: c.listen,
    api: c.api,
    tags: c.tags ?? [],
    mdns: c.mdns,
    bootstrap: c.bootstrap,
    reportIntervalMs: c.report_interval,
    apiToken: token,
    apiInsecure: c.api_insecure,
    deviceType: c.device_type,
    name: c.name,
    ...(c.invite === undefined ? {} : { invite: await readFile(c.invite, 'utf8') }),
    logger: log,
  }
  let daemon: Daemon
  if (role === 'seed') {
    if (fleet.operatorSigner === undefined) {
      throw new CliError(`${c.fleet} holds no operator key: a seed needs it`, 'ERR_NO_OPERATOR_KEY')
    }
    // distribution, observing controller, enroller and the operator's routes (seed/seed-daemon.ts)
    daemon = createSeedDaemon({ ...init, signer: fleet.operatorSigner })
  } else {
    // installer, inference, health reports, rollout controller and their routes (node/device-services.ts)
    const composed = await cliDeviceServices({
      operatorKeyFile: c.operator_key,
      supervisor: { maxConcurrent: c.inference_concurrency, maxQueue: c.inference_queue, threads: c.inference_threads },
      keepVersions: c.keep_versions,
      forwarding: c.forwarding,
    })
    daemon = new Daemon({ ...init, services: composed.services, routes: composed.routes })
  }
  await runUntilSignal(daemon, log)
}
