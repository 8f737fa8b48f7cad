/**
 * The daemon side of `llmesh node start` and `llmesh seed start`, imported only by those commands
 * (the daemon, libp2p and sigstore take most of a second to load; `llmesh status` never pays it).
 * A started daemon logs its listen addresses and API URL (pino JSON on stderr, msg
 * `llmesh node started`) and writes `<data>/node.json`; SIGTERM/SIGINT stop it cleanly (exit 0).
 */
import { constants } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AGENT_RESTART_EXIT_CODE } from '../../node/agent-update/constants.ts'
import { handBack } from '../../node/agent-update/handover.ts'
import { markAgentReady } from '../../node/agent-update/ready.ts'
import { checkApiExposure } from '../../node/api/exposure.ts'
import type { ConfigValues } from '../../node/config/resolve.ts'
import { Daemon, type DaemonInit } from '../../node/daemon.ts'
import { cliDeviceServices } from '../../node/device-services.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { createLogger, type LogFormat } from '../../node/logger.ts'
import { parseRate } from '../../node/mesh/wan-rate.ts'
import pkg from '../../package.json' with { type: 'json' }
import { CliError, UsageError } from '../output.ts'

/** Stops the daemon and exits with `code` (a signal: 0; an agent switch: AGENT_RESTART_EXIT_CODE). */
type Stopper = (signal: string, code?: number) => void

/** Execs the wrapper that handed this daemon over, if any (node/agent-update/handover.ts); returns if none or it failed. */
function handBackToWrapper(log: ReturnType<typeof createLogger>): void {
  try {
    handBack()
  } catch (err) {
    log.error({ err }, 'could not exec the agent wrapper: exiting for the unit to restart it')
  }
}

async function runUntilSignal(
  daemon: Daemon,
  log: ReturnType<typeof createLogger>,
  hooks: { onStop?: (stop: Stopper) => void; afterStart?: () => Promise<void> } = {},
): Promise<void> {
  let stopping = false
  const stop: Stopper = (signal, code = 0): void => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'stopping')
    const force = setTimeout(() => {
      log.warn('stop timed out, exiting')
      process.exit(1)
    }, 15_000)
    force.unref()
    daemon.stop().then(
      () => {
        // handed over by `agent run` (its unit's one-process mode): exec the wrapper, not exit
        if (code === AGENT_RESTART_EXIT_CODE) handBackToWrapper(log)
        process.exit(code)
      },
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
  hooks.onStop?.(stop)
  await daemon.start()
  await hooks.afterStart?.()
}

/** The API token from `api_token_file` or `api_token` (`LLMESH_API_TOKEN`); none: no auth. */
async function apiToken(c: ConfigValues): Promise<string | undefined> {
  const token = c.api_token_file !== undefined ? (await readFile(c.api_token_file, 'utf8')).trim() : c.api_token
  if (token === undefined) return undefined
  if (token.length < 16) throw new UsageError('the API token must be at least 16 characters', 'ERR_INVALID_INPUT')
  return token
}

/** Whether this process may create files in `dir`. */
async function writable(dir: string): Promise<boolean> {
  try {
    await access(dir, constants.W_OK)
    return true
  } catch {
    return false
  }
}

/** Starts a node or seed daemon with the resolved configuration and runs it until a signal. */
export async function start(role: 'node' | 'seed', c: ConfigValues): Promise<void> {
  const log = createLogger({ base: { role }, level: c.log_level, format: c.log_format as LogFormat | undefined })
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
    ...(c.site === undefined ? {} : { site: c.site }),
    mdns: c.mdns,
    bootstrap: c.bootstrap,
    ...(c.ws_port === undefined ? {} : { wsPort: c.ws_port }),
    relayServer: c.relay_server,
    ...(c.wan_rate === undefined ? {} : { wanRate: parseRate(c.wan_rate) }),
    reportIntervalMs: c.report_interval,
    apiToken: token,
    apiInsecure: c.api_insecure,
    deviceType: c.device_type,
    name: c.name,
    ...(c.invite === undefined ? {} : { invite: await readFile(c.invite, 'utf8') }),
    logger: log,
  }
  let daemon: Daemon
  let restart: Stopper = () => {}
  if (role === 'seed') {
    if (fleet.operatorSigner === undefined) {
      throw new CliError(`${c.fleet} holds no operator key: a seed needs it`, 'ERR_NO_OPERATOR_KEY')
    }
    // distribution, observing controller, enroller and the operator's routes (seed/seed-daemon.ts);
    // imported here only: a device daemon does not hold the seed's modules
    const { createSeedDaemon } = await import('../../seed/seed-daemon.ts')
    const { SEQ_FILE } = await import('../../seed/constants.ts')
    // seqs come from the counter beside the operator key (seed/seq-authority.ts), or from the data
    // directory when the fleet directory is read-only (the packaged unit: ProtectSystem=strict)
    const besideKey = await writable(c.fleet)
    const seqFile = join(besideKey ? c.fleet : c.data, SEQ_FILE)
    if (!besideKey) {
      log.warn({ seq_file: seqFile }, 'fleet directory is read-only: release seq counter kept in the data directory')
    }
    daemon = createSeedDaemon({ ...init, signer: fleet.operatorSigner, seqFile })
  } else {
    // installer, inference, health reports, rollout controller and their routes (node/device-services.ts)
    const composed = await cliDeviceServices({
      operatorKeyFile: c.operator_key,
      supervisor: { maxConcurrent: c.inference_concurrency, maxQueue: c.inference_queue, threads: c.inference_threads },
      keepVersions: c.keep_versions,
      agent: {
        root: c.agent_root,
        running: c.agent_version ?? pkg.version,
        enabled: c.agent_update,
        supervised: c.agent_ready_file !== undefined,
        restart: () => restart('agent switched', AGENT_RESTART_EXIT_CODE),
      },
      forwarding: c.forwarding,
    })
    daemon = new Daemon({ ...init, services: composed.services, routes: composed.routes })
  }
  await runUntilSignal(daemon, log, {
    onStop: (stop) => {
      restart = stop
    },
    // the wrapper's health window (`llmesh agent run`): this version came up
    afterStart: async () => {
      if (c.agent_ready_file !== undefined) await markAgentReady(c.agent_ready_file, c.agent_version ?? pkg.version)
    },
  })
}
