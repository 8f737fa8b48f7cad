/**
 * The composition of a device daemon and of a seed: ONE function that lists the service
 * factories and route plugins to hand to `Daemon` (`DaemonInit.services` / `.routes`).
 *
 * Device (`role: 'node'`), started in this order (stopped in reverse):
 *   Distribution (model store + replicator + installer; its own prestage off)
 *   → InferenceSupervisor (child-process worker, no model until the controller activates one)
 *   → HealthReporter (signed reports every `reportIntervalMs`)
 *   → RolloutController (decides, publishes verdicts, prestages, activates / rolls back).
 *   Routes: GET /rollout, GET /rollout/:model/:version, POST /messages, the release bundle routes
 *   (node/install/bundle-routes.ts: export, chunks, import), and POST /rollout/commands
 *   when an operator signer is given (`--operator-key`), the OpenAI-compatible API (/v1/…) and
 *   GET /metrics (prom-client, `rollout_stage` label from the served version's release state,
 *   plus node/rollout/metrics.ts: node identity, rollout state, rollbacks),
 *   the fleet dashboard (GET /dashboard, node/api/dashboard-routes.ts) and the fleet's history
 *   (GET /history/…, node/telemetry/fleet-history.ts; on the seed too, started first).
 * Observer (`observerServices`, what the seed composes in seed/seed-daemon.ts with its own
 *   Distribution and /releases routes): a RolloutController that only observes (`act: false`: no
 *   verdicts, no activation), the rollout routes with the operator key, the dashboard and
 *   GET /metrics (node identity and rollout state only). node/ never imports seed/.
 */
import { readFile } from 'node:fs/promises'
import { createOperatorSigner, type OperatorSigner } from '../protocols/signing/index.ts'
import { agentUpdateService } from './agent-update/service.ts'
import type { AgentUpdaterInit } from './agent-update/updater.ts'
import { dashboardRoutes } from './api/dashboard-routes.ts'
import { historyRoutes } from './api/history-routes.ts'
import type { DaemonContext, RouteFactory, Service, ServiceFactory } from './daemon.ts'
import { InferenceSupervisor } from './inference/inference-supervisor.ts'
import { createInferenceMetrics, type InferenceMetrics } from './inference/metrics.ts'
import { openaiRoutes } from './inference/openai-routes.ts'
import type { InferenceSupervisorInit } from './inference/types.ts'
import { bundleRoutes } from './install/bundle-routes.ts'
import { Distribution, type DistributionInit } from './install/distribution.ts'
import { runtimeVersion } from './install/runtime-version.ts'
import { createMembershipMetrics } from './mesh/membership-metrics.ts'
import { createMeshMetrics } from './mesh/mesh-metrics.ts'
import { createStoreMetrics, storeStatus } from './mesh/store-metrics.ts'
import type { SwarmKeyService } from './mesh/swarm-key-service.ts'
import { createQualityMetrics } from './quality/metrics.ts'
import { probeSetsFor } from './quality/probe-sets.ts'
import { QualityProber, type QualityProberInit } from './quality/prober.ts'
import { createRolloutMetrics, type RolloutMetrics } from './rollout/metrics.ts'
import { RolloutController, type RolloutControllerInit } from './rollout/rollout-controller.ts'
import { rolloutRoutes } from './rollout/routes.ts'
import { createServing, type Serving, type ServingInit } from './serving/serving-service.ts'
import { createReplicationMetrics } from './store/replication-metrics.ts'
import { FleetHistory } from './telemetry/fleet-history.ts'
import { HealthReporter, type HealthReporterInit } from './telemetry/health-reporter.ts'

/** The live parts, once the daemon has started them (for tests and extra routes). */
export interface DeviceParts {
  distribution?: Distribution
  supervisor?: InferenceSupervisor
  metrics?: InferenceMetrics
  rolloutMetrics?: RolloutMetrics
  reporter?: HealthReporter
  controller?: RolloutController
  /** The fleet's history (every node): GET /history/…. */
  history?: FleetHistory
  prober?: QualityProber
  /** Agent releases (llmesh updating itself), when `DeviceServicesInit.agent` is given. */
  agent?: ReturnType<typeof agentUpdateService>
  /** Federated serving (node/serving/): forwarder, responder, their metrics. */
  serving?: Serving
}

/** Options of the composition. */
export interface DeviceServicesInit {
  /** The operator key: the seed's, or a node's `--operator-key` (enables POST /rollout/commands). */
  signer?: OperatorSigner
  /** Run the inference worker on a device (default true). */
  inference?: boolean
  supervisor?: InferenceSupervisorInit
  reporter?: Pick<HealthReporterInit, 'promptHashes' | 'promptHashSample' | 'deviceType'>
  rollout?: RolloutControllerInit
  distribution?: DistributionInit
  /** Bearer token the OpenAI-compatible API requires from non-loopback callers (default none). */
  apiToken?: string
  /** Quality probes run when idle (node/quality/; `enabled: false` turns them off). */
  quality?: QualityProberInit
  /** The agent version running and whether it takes agent releases (node/agent-update/). */
  agent?: AgentUpdaterInit
  /** Federated serving (node/serving/; `enabled: false` turns it off). */
  serving?: ServingInit
}

/** What to pass to the daemon. */
export interface DeviceServices {
  services: ServiceFactory[]
  routes: RouteFactory[]
  parts: DeviceParts
}

/** The supervisor as a daemon service, with its /status section. */
function supervisorService(sup: InferenceSupervisor, metrics: InferenceMetrics, ctx: DaemonContext): Service {
  let starting: Promise<void> = Promise.resolve()
  let unbind = (): void => {}
  return {
    // the worker comes up in the background (~2 s of CPU): the daemon's API and mesh do not wait
    start: async () => {
      unbind = metrics.bindSupervisor(sup)
      starting = sup.start().catch((err) => ctx.logger.error({ err }, 'inference supervisor failed to start'))
      ctx.status.addSection('inference', () => {
        const s = sup.status()
        const l = sup.limits
        return {
          state: s.state,
          model: s.model?.name ?? null,
          version: s.model?.version ?? null,
          restarts: s.restarts,
          max_concurrent: l.maxConcurrent,
          max_queue: l.maxQueue,
          threads: l.threads ?? null,
        }
      })
    },
    stop: async () => {
      await starting
      await sup.stop()
      unbind()
    },
  }
}

/** Routes and metrics every composition has: rollout routes, dashboard, GET /metrics. */
function commonParts(init: Pick<DeviceServicesInit, 'signer' | 'agent'>, parts: DeviceParts) {
  const rollout: RouteFactory = (ctx) =>
    rolloutRoutes({
      controller: () => parts.controller,
      fleet: ctx.config.fleet,
      signer: init.signer,
      publish: ctx.publish,
    })
  // the fleet dashboard (GET /dashboard): operator controls when this node holds the operator key
  const dashboard: RouteFactory = (ctx) => dashboardRoutes({ ctx }, { operator: init.signer !== undefined })
  // GET /metrics on every node: the inference metrics (devices) and the rollout metrics
  const rolloutMetrics = createRolloutMetrics()
  parts.rolloutMetrics = rolloutMetrics
  const bindMetrics = (ctx: DaemonContext, controller: RolloutController): void => {
    rolloutMetrics.setNode({
      peerId: ctx.identity.peerId,
      role: ctx.config.role,
      fleet: ctx.config.fleet,
      version: init.agent?.running,
    })
    rolloutMetrics.bindController(controller)
    // every periodic loop's faults: llmesh_loop_errors_total and the `loops` section of /status
    if (ctx.mesh.state === 'running') ctx.status.loops.include(ctx.mesh.antiEntropy.loops)
    rolloutMetrics.bindLoops(ctx.status.loops)
    // the message store's disk health: the `store` section of /status
    ctx.status.addSection('store', () => storeStatus(ctx.store))
  }
  const metricsRoute: RouteFactory = (ctx) => async (app) => {
    const storeMetrics = createStoreMetrics(ctx.store)
    const meshMetrics = createMeshMetrics(ctx.mesh)
    let qualityMetrics: ReturnType<typeof createQualityMetrics> | undefined
    const membershipMetrics = createMembershipMetrics({
      gate: ctx.mesh.gateCounts,
      swarmKey: () => ctx.status.sections.get('swarm_key')?.() as ReturnType<SwarmKeyService['statusJson']> | undefined,
    })
    const replicationMetrics = createReplicationMetrics(() => parts.distribution?.replicationStats())
    app.get('/metrics', async (_req, reply) => {
      let text = ''
      if (parts.metrics !== undefined) {
        // the rollout stage label follows the served version's release
        const m = parts.supervisor?.model
        const r = parts.controller?.statusJson().releases.find((x) => x.model === m?.name && x.version === m?.version)
        parts.metrics.setLabels({ rolloutStage: r?.state ?? 'none' })
        text = await parts.metrics.registry.metrics()
      }
      text += await rolloutMetrics.registry.metrics()
      text += await storeMetrics.registry.metrics()
      text += await meshMetrics.registry.metrics()
      if (parts.prober !== undefined) {
        qualityMetrics ??= createQualityMetrics(parts.prober)
        text += await qualityMetrics.metrics()
      }
      text += await membershipMetrics.registry.metrics()
      text += await replicationMetrics.registry.metrics()
      if (parts.serving !== undefined) text += await parts.serving.metrics.registry.metrics()
      return reply.type(rolloutMetrics.registry.contentType).send(text)
    })
  }
  // the fleet's history from the signed health reports (every node; GET /history/…)
  const history: RouteFactory = () => historyRoutes({ history: () => parts.history })
  const historyService: ServiceFactory = (ctx) => {
    parts.history = new FleetHistory(
      { store: ctx.store, logger: ctx.logger.child({ svc: 'history' }) },
      { dataDir: ctx.config.dataDir },
    )
    return parts.history
  }
  return { routes: [rollout, dashboard, metricsRoute, history], bindMetrics, historyService }
}

/**
 * A node that observes the fleet's rollouts without acting on them (the seed): a RolloutController
 * with `act: false`, the rollout routes (commands when `signer` is given), dashboard and /metrics.
 * `distribution()` names the caller's Distribution, for `parts` (tests, status).
 */
export function observerServices(
  init: Pick<DeviceServicesInit, 'signer' | 'rollout'> & { distribution?: () => Distribution | undefined },
): DeviceServices {
  const parts: DeviceParts = {}
  const common = commonParts(init, parts)
  const services: ServiceFactory[] = [
    common.historyService,
    (ctx) => {
      parts.distribution = init.distribution?.()
      parts.controller = new RolloutController({ ctx }, { ...init.rollout, act: false })
      common.bindMetrics(ctx, parts.controller)
      return parts.controller
    },
  ]
  return { services, routes: common.routes, parts }
}

/** Builds the service factories and route plugins of a device daemon. */
export function deviceServices(init: DeviceServicesInit): DeviceServices {
  const parts: DeviceParts = {}
  const services: ServiceFactory[] = []
  const routes: RouteFactory[] = []
  const common = commonParts(init, parts)
  services.push(common.historyService)
  services.push((ctx) => {
    parts.distribution = new Distribution(ctx, { ...init.distribution, prestage: false })
    return parts.distribution
  })
  if (init.inference !== false) {
    services.push((ctx) => {
      parts.supervisor = new InferenceSupervisor(
        {
          logger: ctx.logger.child({ svc: 'inference' }),
        },
        init.supervisor ?? {},
      )
      parts.metrics = createInferenceMetrics()
      return supervisorService(parts.supervisor, parts.metrics, ctx)
    })
    // federated serving: requests this device cannot serve go to a peer that can (node/serving/)
    const serving = createServing(
      { controller: () => parts.controller, version: () => parts.supervisor?.model?.version },
      init.serving,
    )
    parts.serving = serving
    routes.push(() => async (app) => {
      serving.setApp(app)
      await openaiRoutes(app, {
        supervisor: parts.supervisor!,
        metrics: parts.metrics!,
        apiToken: init.apiToken,
        forward: serving.hook,
        remoteModels: serving.remoteModels,
        forwardedSignal: serving.forwardedSignal,
      })
    })
  }
  if (init.inference !== false) {
    services.push((ctx) => {
      const prober = new QualityProber(
        {
          supervisor: parts.supervisor!,
          probeSets: (model, version) =>
            probeSetsFor(
              ctx.store.releases().map((r) => r.message),
              model,
              version,
            ),
          logger: ctx.logger.child({ svc: 'quality' }),
        },
        init.quality ?? {},
      )
      parts.prober = prober
      const start = async () => {
        prober.start()
        ctx.status.addSection('quality', () => ({ ...prober.counters, figures: prober.figures() }))
      }
      return { start, stop: async () => prober.stop() }
    })
  }
  services.push(async (ctx) => {
    const installer = parts.distribution!.installer
    ctx.status.addSection('install', () => ({ keep_versions: installer.keepVersions }))
    parts.reporter = new HealthReporter(
      {
        identity: ctx.identity,
        store: ctx.store,
        publish: ctx.publish,
        logger: ctx.logger.child({ svc: 'health' }),
        loops: ctx.status.loops,
        supervisor: parts.supervisor,
        quality: () => parts.prober?.figures() ?? [],
        agent: () => parts.agent?.report(),
        // what the controller has loaded and probed (installer links alone until it runs)
        active: async () =>
          parts.controller !== undefined
            ? parts.controller.activeVersions()
            : Object.entries(await installer.status()).flatMap(([model, s]) =>
                s.active === null ? [] : [{ model, version: s.active }],
              ),
        staged: async () =>
          Object.entries(await installer.status()).flatMap(([model, s]) =>
            s.staged.map((version) => ({ model, version })),
          ),
      },
      {
        fleet: ctx.config.fleet,
        dataDir: ctx.config.dataDir,
        intervalMs: ctx.config.reportIntervalMs,
        tags: ctx.config.tags,
        runtimeVersion: await runtimeVersion(),
        ...init.reporter,
      },
    )
    return parts.reporter
  })
  // after the reporter: versions the wrapper rolled back become events of the next report
  const agent = init.agent
  if (agent !== undefined)
    services.push((ctx) => {
      const record = (ref: { model: string; version: string }) => parts.reporter?.record(ref, 'rollbacks')
      parts.agent = agentUpdateService({ ctx, store: () => parts.distribution?.store, record }, agent)
      return parts.agent
    })
  services.push((ctx) => {
    parts.controller = new RolloutController(
      { ctx, installer: parts.distribution!.installer, supervisor: parts.supervisor, reporter: parts.reporter },
      { ...init.rollout, act: true },
    )
    // requests are labelled with the rollout stage of their release at the time they ran
    parts.metrics?.setStageResolver((model, version) => ctx.status.releaseState(model, version))
    common.bindMetrics(ctx, parts.controller)
    return parts.controller
  })
  if (parts.serving !== undefined) {
    const serving = parts.serving
    services.push((ctx) => serving.service(ctx))
  }
  routes.push(...common.routes)
  // release bundles (offline sites): export from and import into this device
  routes.push((ctx) =>
    bundleRoutes({ ctx, store: () => parts.distribution?.store, logger: ctx.logger.child({ svc: 'bundles' }) }),
  )
  return { services, routes, parts }
}

/**
 * What `llmesh node start` runs: a node signs operator commands only when given
 * `--operator-key <file>` (PEM). The seed composes itself (seed/seed-daemon.ts).
 */
export async function cliDeviceServices(opts: {
  operatorKeyFile?: string
  /** Inference queue, concurrency and threads (node/config/options.ts). */
  supervisor?: Pick<InferenceSupervisorInit, 'maxConcurrent' | 'maxQueue' | 'threads'>
  /** Versions of each model kept on disk. */
  keepVersions?: number
  agent?: AgentUpdaterInit
  /** Federated serving (`--no-forwarding`: false). */
  forwarding?: boolean
}): Promise<DeviceServices> {
  const signer =
    opts.operatorKeyFile === undefined ? undefined : createOperatorSigner(await readFile(opts.operatorKeyFile, 'utf8'))
  return deviceServices({
    signer,
    supervisor: opts.supervisor,
    agent: opts.agent,
    serving: { enabled: opts.forwarding ?? true },
    distribution: opts.keepVersions === undefined ? undefined : { installer: { keepVersions: opts.keepVersions } },
  })
}
