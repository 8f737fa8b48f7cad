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
 *   GET /metrics (prom-client: requests by `model`/`model_version`, no stage label; plus
 *   node/rollout/metrics.ts: node identity, rollout state (`llmesh_rollout_stage_info`, joined
 *   on model_version), rollbacks),
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
import type { RouteFactory, ServiceFactory } from './daemon.ts'
import { commonParts, type DeviceParts, supervisorService } from './device-parts.ts'
import { InferenceSupervisor } from './inference/inference-supervisor.ts'
import { createInferenceMetrics } from './inference/metrics.ts'
import { openaiRoutes } from './inference/openai-routes.ts'
import type { InferenceSupervisorInit } from './inference/types.ts'
import { bundleRoutes } from './install/bundle-routes.ts'
import { Distribution, type DistributionInit } from './install/distribution.ts'
import { runtimeVersion } from './install/runtime-version.ts'
import { probeSetsFor } from './quality/probe-sets.ts'
import { QualityProber, type QualityProberInit } from './quality/prober.ts'
import { RolloutController, type RolloutControllerInit } from './rollout/rollout-controller.ts'
import { createServing, type ServingInit } from './serving/serving-service.ts'
import { STORE_OPEN_ON_DEMAND } from './store/constants.ts'
import { HealthReporter, type HealthReporterInit } from './telemetry/health-reporter.ts'

export type { DeviceParts }

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
    // a device that holds no feed opens its store (RocksDB) when it first needs it (node/store/store-open.ts)
    const store = { openOnDemand: STORE_OPEN_ON_DEMAND, ...init.distribution?.store }
    parts.distribution = new Distribution(ctx, { ...init.distribution, store, prestage: false })
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
      const record = (ref: { model: string; version: string }) => {
        parts.reporter?.record(ref, 'rollbacks')
        parts.rolloutMetrics?.agentRolledBack(ref.version)
      }
      const rollout = () => parts.controller?.agent
      const registry = parts.rolloutMetrics?.registry
      parts.agent = agentUpdateService(
        {
          ...{ ctx, store: () => parts.distribution?.store, record, rollout, registry },
          // called from a progress tick: a distribution not (or no longer) running has nothing to restart
          recycle: (reason) => {
            try {
              parts.distribution?.replicator.recycle(reason)
            } catch {
              // not started yet: no session to restart
            }
          },
        },
        agent,
      )
      return parts.agent
    })
  services.push((ctx) => {
    parts.controller = new RolloutController(
      { ctx, installer: parts.distribution!.installer, supervisor: parts.supervisor, reporter: parts.reporter },
      { ...init.rollout, act: true },
    )
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
