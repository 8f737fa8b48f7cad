/**
 * Seed side of distribution: the seed runs a `Distribution` (it owns every lineage feed and
 * serves blocks; it does not prestage) and the `/releases` routes that publish through it.
 * Composed into the seed by `SeedDaemon` (seed/seed-daemon.ts).
 */
import { join } from 'node:path'
import type { RouteFactory, ServiceFactory } from '../node/daemon.ts'
import { bundleRoutes } from '../node/install/bundle-routes.ts'
import { Distribution, type DistributionInit } from '../node/install/distribution.ts'
import { AGENT_LINEAGE } from '../protocols/agent/constants.ts'
import type { ReleaseManifest } from '../protocols/schemas/index.ts'
import type { OperatorSigner } from '../protocols/signing/index.ts'
import { agentRoutes } from './agent-routes.ts'
import { UPLOAD_DIR } from './constants.ts'
import type { PublishMetrics } from './publish-metrics.ts'
import { releaseRoutes } from './release-routes.ts'
import type { SeqAuthority } from './seq-authority.ts'

/** Service and route factories to add to the seed daemon. */
export function seedDistribution(opts: {
  signer: OperatorSigner
  distribution?: DistributionInit
  /** The operator's durable seq counter (seed/seq-authority.ts). */
  seqs?: SeqAuthority
  /** Counts refused publishes (seed/publish-metrics.ts). */
  metrics?: PublishMetrics
}): {
  services: ServiceFactory[]
  routes: RouteFactory[]
  /** The distribution instance, once the daemon has started. */
  get(): Distribution | undefined
} {
  let dist: Distribution | undefined
  return {
    services: [
      (ctx) => {
        dist = new Distribution(ctx, { prestage: false, ...opts.distribution })
        return dist
      },
    ],
    routes: [
      (ctx) => {
        if (dist === undefined) throw new Error('seed distribution service was not started before its routes')
        return releaseRoutes({
          store: dist.store,
          signer: opts.signer,
          fleet: ctx.config.fleet,
          uploadDir: join(ctx.config.dataDir, UPLOAD_DIR),
          publish: (wire) => ctx.publish(wire),
          releases: () =>
            ctx.store
              .releases()
              .map((r) => ({ manifest: r.message as ReleaseManifest, digest: r.digest, bytes: r.bytes })),
          highestSeq: (model) => ctx.store.highestReleaseSeq(model),
          seqs: opts.seqs,
          metrics: opts.metrics,
          logger: ctx.logger.child({ svc: 'releases' }),
        })
      },
      // agent releases: packages of llmesh itself, chunked into the same store (seed/agent-routes.ts)
      (ctx) => {
        if (dist === undefined) throw new Error('seed distribution service was not started before its routes')
        return agentRoutes({
          store: dist.store,
          signer: opts.signer,
          fleet: ctx.config.fleet,
          uploadDir: join(ctx.config.dataDir, UPLOAD_DIR),
          publish: (wire) => ctx.publish(wire),
          releases: () => ctx.store.list('AgentRelease').map((r) => ({ release: r.message, digest: r.digest })),
          seqs: opts.seqs,
          state: (version) => ctx.status.releaseState(AGENT_LINEAGE, version),
          metrics: opts.metrics,
          logger: ctx.logger.child({ svc: 'agent-releases' }),
        })
      },
      // release bundles: the seed exports (and imports) like any node
      (ctx) => bundleRoutes({ ctx, store: () => dist?.store, logger: ctx.logger.child({ svc: 'bundles' }) }),
    ],
    get: () => dist,
  }
}
