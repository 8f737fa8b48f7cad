/**
 * The device daemon: the ONE place that orders start-up and shut-down of every service.
 *
 * Start: identity → message store → mesh (libp2p, gossip, anti-entropy) → extra services (in the
 * order given) → HTTP API (built-in /status + extra route plugins) → bonjour → `<data>/node.json`.
 * Stop: the reverse. start()/stop() are idempotent and serialized; state goes
 * 'idle' → 'starting' → 'running' → 'stopping' → 'stopped'. A failed start stops what started.
 *
 * Other services plug in through `DaemonInit.services` (factories given the `DaemonContext`:
 * typed store events, publish, status hooks) and `DaemonInit.routes` (fastify plugins).
 * The /status JSON is built in daemon-status.ts; its options, and what it derives from them (tags,
 * hello, listen addresses), are in daemon-init.ts.
 */

import { rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { checkApiExposure } from './api/exposure.ts'
import { ApiServer } from './api/server.ts'
import { type NodeStatus, StatusRegistry, statusRoute } from './api/status.ts'
import {
  DEFAULT_API,
  DEFAULT_LISTEN,
  DEFAULT_REPORT_INTERVAL_MS,
  NODE_INFO_FILE,
  SERVICE_STOP_TIMEOUT_MS,
} from './constants.ts'
import type { DaemonContext, Service } from './daemon-context.ts'
import { type DaemonInit, declaredTags, type NodeInfo, nodeHello, wsListen } from './daemon-init.ts'
import { buildNodeStatus } from './daemon-status.ts'
import { BonjourAdvertiser, hostNameOf } from './discovery/bonjour-advertiser.ts'
import { writeFileDurable } from './durable-file.ts'
import { presentInvite } from './fleet/invite-claim.ts'
import { reportRoutes } from './fleet/report-routes.ts'
import { loadOrCreateIdentity } from './identity.ts'
import { createLogger, type Logger } from './logger.ts'
import { createFleetVerifier } from './mesh/fleet-verifier.ts'
import { MeshNode, type ServiceState } from './mesh/mesh-node.ts'
import { MessageStore } from './mesh/message-store.ts'
import { SwarmKeyService } from './mesh/swarm-key-service.ts'
import { resolveSwarmKey } from './mesh/swarm-key-state.ts'

export type {
  DaemonContext,
  DaemonFleet,
  Role,
  RouteFactory,
  Service,
  ServiceFactory,
} from './daemon-context.ts'
export { type DaemonInit, declaredTags, type NodeInfo, wsListen } from './daemon-init.ts'

/** The device daemon. */
export class Daemon {
  private readonly init: DaemonInit
  private readonly log: Logger
  private stateValue: ServiceState = 'idle'
  private transition: Promise<void> = Promise.resolve()
  private started: Service[] = []
  /** Services whose last `stop()` did not settle within the deadline (names), for logs and tests. */
  readonly stuck: string[] = []
  private ctxValue: DaemonContext | undefined
  private api: ApiServer | undefined
  private bonjour: BonjourAdvertiser | undefined
  readonly status = new StatusRegistry()

  constructor(init: DaemonInit) {
    this.init = init
    this.log = init.logger ?? createLogger({ base: { role: init.role ?? 'node' } })
  }

  get state(): ServiceState {
    return this.stateValue
  }

  /** The context (after start). */
  get context(): DaemonContext {
    if (this.ctxValue === undefined) throw new Error('daemon is not started')
    return this.ctxValue
  }

  /** API base URL (after start). */
  get apiUrl(): string | undefined {
    return this.api?.url
  }

  /** The API server (after start): its routes, and `inject` for tests. */
  get apiServer(): ApiServer | undefined {
    return this.api
  }

  start(): Promise<void> {
    this.transition = this.transition.then(() => this.doStart())
    return this.transition
  }

  stop(): Promise<void> {
    this.transition = this.transition.then(() => this.doStop())
    return this.transition
  }

  /** The /status JSON. */
  async buildStatus(): Promise<NodeStatus> {
    return buildNodeStatus(this.context)
  }

  private async doStart(): Promise<void> {
    if (this.stateValue === 'running') return
    this.stateValue = 'starting'
    const init = this.init
    const role = init.role ?? 'node'
    try {
      // an API open to the network without a token: refused before anything starts
      checkApiExposure({ address: init.api ?? DEFAULT_API, token: init.apiToken, insecure: init.apiInsecure })
      const identity = await loadOrCreateIdentity(init.dataDir)
      const log = this.log.child({ peer: identity.peerId, ...(init.name === undefined ? {} : { name: init.name }) })
      if (identity.created) log.info({ dataDir: init.dataDir }, 'created a new device identity')
      const store = new MessageStore({ logger: log.child({ svc: 'store' }) }, { dataDir: init.dataDir })
      await store.load()
      const verify = createFleetVerifier({ trust: init.fleet.trust, chain: init.fleet.chain, store })
      const tags = declaredTags(init.tags, init.site)
      const hello = nodeHello(init, role, tags)
      // the join secret in force: the fleet directory's, or a newer one a rotation gave this node
      const swarmKey = await resolveSwarmKey(init.dataDir, init.fleet.psk, Date.now())
      const mesh = new MeshNode(
        { store, verify, logger: log },
        {
          fleet: init.fleet.id,
          psk: swarmKey.psk,
          privateKey: identity.privateKey,
          listen: [...(init.listen ?? [DEFAULT_LISTEN]), ...wsListen(init.wsPort)],
          mdns: init.mdns ?? true,
          bootstrap: init.bootstrap,
          relayServer: init.relayServer,
          wanRate: init.wanRate,
          antiEntropy: { ...init.antiEntropy, hello },
        },
      )
      const ctx: DaemonContext = {
        config: {
          role,
          fleet: init.fleet.id,
          dataDir: init.dataDir,
          tags,
          reportIntervalMs: init.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS,
          hello,
        },
        identity,
        logger: log,
        store,
        mesh,
        publish: (bytes) => mesh.publish(bytes),
        verify: async (bytes) => verify(bytes, Date.now()),
        status: this.status,
        trust: () => verify.trust(),
        advertise: async () => {
          await this.bonjour?.refresh()
        },
      }
      this.ctxValue = ctx
      await this.startService(mesh)
      const rotations = new SwarmKeyService(
        {
          store,
          mesh,
          privateKey: identity.privateKey,
          self: identity.peerId,
          logger: log.child({ svc: 'swarm-key' }),
        },
        { dataDir: init.dataDir, resolved: swarmKey },
      )
      this.status.addSection('swarm_key', () => rotations.statusJson())
      await this.startService(rotations)
      await this.handOnTrustChain(ctx)
      if (init.invite !== undefined) await presentInvite(ctx, init.invite, Date.now())
      for (const f of init.services ?? []) await this.startService(await f(ctx))
      const api = new ApiServer(
        { logger: log.child({ svc: 'api' }) },
        {
          address: init.api ?? DEFAULT_API,
          apiToken: init.apiToken,
          insecure: init.apiInsecure,
          // this node's own mDNS names pass the API's Host check
          localNames: [`${hostname()}.local`, hostNameOf(identity.peerId)],
          plugins: [
            statusRoute(() => this.buildStatus()),
            reportRoutes(ctx),
            ...(init.routes ?? []).map((r) => r(ctx)),
          ],
        },
      )
      this.api = api
      await this.startService(api)
      if (init.mdns ?? true) {
        const port = Number(new URL(api.url as string).port)
        const bonjour = new BonjourAdvertiser(
          { logger: log.child({ svc: 'bonjour' }) },
          {
            id: identity.peerId,
            fleet: init.fleet.id,
            role,
            port: () => port,
            models: async () =>
              Object.entries(await this.status.models()).flatMap(([m, s]) =>
                s.active === null ? [] : [`${m}@${s.active}`],
              ),
          },
        )
        this.bonjour = bonjour
        await this.startService(bonjour)
      }
      const info: NodeInfo = {
        peerId: identity.peerId,
        fleet: init.fleet.id,
        role,
        multiaddrs: mesh.multiaddrs(),
        api: api.url as string,
        pid: process.pid,
      }
      // whole or absent: the CLI and supervisors poll this file while the node starts
      await writeFileDurable(join(init.dataDir, NODE_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`, 0o644)
      this.stateValue = 'running'
      log.info({ ...info, listen: info.multiaddrs }, 'llmesh node started')
    } catch (err) {
      this.stateValue = 'running'
      await this.doStop()
      throw err
    }
  }

  /** Publishes the fleet directory's root rotations so peers holding an older fleet directory rotate too. */
  private async handOnTrustChain(ctx: DaemonContext): Promise<void> {
    for (const step of (this.init.fleet.chain ?? []).slice(1)) {
      for (const env of step) {
        try {
          await ctx.publish(env)
        } catch (err) {
          ctx.logger.warn({ err }, 'could not hand on a trust root rotation')
        }
      }
    }
  }

  private async startService(s: Service): Promise<void> {
    await s.start()
    this.started.push(s)
  }

  private async doStop(): Promise<void> {
    if (this.stateValue === 'idle' || this.stateValue === 'stopped') return
    this.stateValue = 'stopping'
    const services = this.started.reverse()
    this.started = []
    this.stuck.length = 0
    for (const s of services) {
      const service = serviceName(s)
      const stopped = await settleWithin(
        Promise.resolve().then(() => s.stop()),
        this.init.serviceStopTimeoutMs ?? SERVICE_STOP_TIMEOUT_MS,
      )
      if (stopped === 'timeout') {
        this.stuck.push(service)
        this.log.error({ service }, 'service did not stop in time; stopping the others')
      } else if (stopped !== 'ok') this.log.warn({ err: stopped.err, service }, 'service failed to stop cleanly')
    }
    await rm(join(this.init.dataDir, NODE_INFO_FILE), { force: true })
    this.api = undefined
    this.bonjour = undefined
    this.stateValue = 'stopped'
    this.log.info('llmesh node stopped')
  }
}

/** A service's name for logs: its `name` if it has one, else its class's. */
function serviceName(s: Service): string {
  const named = (s as { name?: unknown }).name
  return typeof named === 'string' ? named : (s.constructor?.name ?? 'service')
}

/** Waits for `p` at most `ms`: 'ok', 'timeout', or the error it rejected with. */
async function settleWithin(p: Promise<unknown>, ms: number): Promise<'ok' | 'timeout' | { err: unknown }> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms)
  })
  try {
    return await Promise.race([
      p.then(
        () => 'ok' as const,
        (err: unknown) => ({ err }),
      ),
      deadline,
    ])
  } finally {
    clearTimeout(timer)
  }
}
