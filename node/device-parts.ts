/**
 * What every composition of node/device-services.ts shares: the live parts (`DeviceParts`), the
 * supervisor as a daemon service, and the routes and metrics every node has (rollout routes,
 * dashboard, GET /metrics over every registry, the fleet's history).
 */
import type { Registry } from 'prom-client'
import type { OperatorSigner } from '../protocols/signing/index.ts'
import type { agentUpdateService } from './agent-update/service.ts'
import type { AgentUpdaterInit } from './agent-update/updater.ts'
import { dashboardRoutes } from './api/dashboard-routes.ts'
import { historyRoutes } from './api/history-routes.ts'
import type { DaemonContext, RouteFactory, Service, ServiceFactory } from './daemon.ts'
import type { InferenceSupervisor } from './inference/inference-supervisor.ts'
import type { InferenceMetrics } from './inference/metrics.ts'
import type { Distribution } from './install/distribution.ts'
import { createMembershipMetrics } from './mesh/membership-metrics.ts'
import { createMeshMetrics } from './mesh/mesh-metrics.ts'
import { createStoreMetrics, storeStatus } from './mesh/store-metrics.ts'
import type { SwarmKeyService } from './mesh/swarm-key-service.ts'
import { createQualityMetrics } from './quality/metrics.ts'
import type { QualityProber } from './quality/prober.ts'
import { createRolloutMetrics, type RolloutMetrics } from './rollout/metrics.ts'
import type { RolloutController } from './rollout/rollout-controller.ts'
import { rolloutRoutes } from './rollout/routes.ts'
import type { Serving } from './serving/serving-service.ts'
import { createReplicationMetrics } from './store/replication-metrics.ts'
import { FleetHistory } from './telemetry/fleet-history.ts'
import type { HealthReporter } from './telemetry/health-reporter.ts'

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
  /** More registries GET /metrics serves (the seed's publish refusals, seed/publish-metrics.ts). */
  registries?: Registry[]
}

/** The supervisor as a daemon service, with its /status section. */
export function supervisorService(sup: InferenceSupervisor, metrics: InferenceMetrics, ctx: DaemonContext): Service {
  let starting: Promise<void> = Promise.resolve()
  let unbind = (): void => {}
  return {
    // no worker until a model is activated (spawnOnStart off); with it on, the worker comes up in
    // the background (~2 s of CPU): the daemon's API and mesh do not wait
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
export function commonParts(init: { signer?: OperatorSigner; agent?: AgentUpdaterInit }, parts: DeviceParts) {
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
      if (parts.metrics !== undefined) text = await parts.metrics.registry.metrics()
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
      for (const r of parts.registries ?? []) text += await r.metrics()
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
