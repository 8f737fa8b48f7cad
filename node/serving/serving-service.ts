/**
 * Federated serving as a daemon service (composed by node/device-services.ts): the metrics, the
 * forwarder (requester side) and the responder (server side, PROTOCOL_INFER), both on the mesh's
 * libp2p node, and what the OpenAI routes take from them (`hook`, `remoteModels`). The responder
 * runs requests through the API's own routes, known once the routes are registered (`setApp`).
 * With `enabled: false` (`--no-forwarding`) nothing is forwarded and no peer's request is served.
 *
 * A version is a canary here while its release, as this node's rollout controller sees it, is
 * rolling or paused before its last stage; a release the controller does not know is not one.
 * Forwarded requests avoid canaries unless the release's policy says `forward_to_canary`
 * (canaries.ts).
 */
import type { FastifyInstance } from 'fastify'
import type { DaemonContext, Service } from '../daemon-context.ts'
import type { RolloutController } from '../rollout/rollout-controller.ts'
import { type CanaryPolicyOf, closedCanaries } from './canaries.ts'
import { FORWARD_REPORT_MAX_INTERVALS, FORWARD_REPORT_MIN_AGE_MS } from './constants.ts'
import { ForwardedSignals, type ForwardHook, forwardHook, injectExecute } from './forward-routes.ts'
import { Forwarder, type ForwarderInit } from './forwarder.ts'
import { createForwardMetrics, type ForwardMetrics } from './metrics.ts'
import type { RemoteModel } from './peer-choice.ts'
import { Responder, type ResponderInit } from './responder.ts'

/** Options of federated serving. */
export interface ServingInit {
  /** Forward and serve forwarded requests (default true). */
  enabled?: boolean
  forwarder?: ForwarderInit
  responder?: ResponderInit
}

/** What the composition reads. */
export interface ServingComponents {
  /** The rollout controller, once built (canary versions). */
  controller: () => RolloutController | undefined
  /** The version this device serves. */
  version: () => string | undefined
}

/** The parts, for the routes and /metrics. */
export interface Serving {
  metrics: ForwardMetrics
  /** The forwarder while the service runs (tests). */
  forwarder(): Forwarder | undefined
  hook: ForwardHook
  remoteModels: (local: ReadonlySet<string>, max: number) => RemoteModel[]
  /** The abort signal of a forwarded request being served, by its `x-llmesh-forwarded` id. */
  forwardedSignal: (id: string | undefined) => AbortSignal | undefined
  /** Gives the responder the API instance the OpenAI routes are registered on. */
  setApp(app: FastifyInstance): void
  service(ctx: DaemonContext): Service
}

/** Builds federated serving. */
export function createServing(components: ServingComponents, init: ServingInit = {}): Serving {
  const metrics = createForwardMetrics()
  let forwarder: Forwarder | undefined
  let app: FastifyInstance | undefined
  const signals = new ForwardedSignals()
  const execute = injectExecute(() => app, signals)
  let canaryCache: { at: number; rolling: Set<string> } | undefined
  let manifests: () => CanaryPolicyOf[] = () => []
  const isCanary = (model: string, version: string): boolean => {
    const now = Date.now()
    if (canaryCache === undefined || now - canaryCache.at > 1000) {
      const releases = components.controller()?.statusJson().releases ?? []
      canaryCache = { at: now, rolling: closedCanaries(releases, manifests()) }
    }
    return canaryCache.rolling.has(`${model}@${version}`)
  }
  return {
    metrics,
    forwarder: () => forwarder,
    hook: forwardHook(() => forwarder),
    remoteModels: (local, max) => forwarder?.remoteModels(local, max) ?? [],
    forwardedSignal: (id) => signals.get(id),
    setApp: (a) => {
      app = a
    },
    service(ctx) {
      let responder: Responder | undefined
      return {
        start: async () => {
          if (init.enabled === false || ctx.mesh.state !== 'running') return
          manifests = () => ctx.store.releases().map((r) => r.message)
          const libp2p = ctx.mesh.libp2p
          forwarder = new Forwarder(
            {
              libp2p: () => (ctx.mesh.state === 'running' ? ctx.mesh.libp2p : undefined),
              store: ctx.store,
              self: ctx.identity.peerId,
              isCanary,
              logger: ctx.logger.child({ svc: 'forward' }),
              metrics,
            },
            {
              reportMaxAgeMs: Math.max(
                FORWARD_REPORT_MAX_INTERVALS * ctx.config.reportIntervalMs,
                FORWARD_REPORT_MIN_AGE_MS,
              ),
              ...init.forwarder,
            },
          )
          responder = new Responder(
            {
              libp2p,
              store: ctx.store,
              execute: () => (app === undefined ? undefined : execute),
              version: components.version,
              logger: ctx.logger.child({ svc: 'forward' }),
              metrics,
            },
            init.responder,
          )
          await responder.start()
        },
        stop: async () => {
          forwarder = undefined
          await responder?.stop()
          responder = undefined
        },
      }
    },
  }
}
