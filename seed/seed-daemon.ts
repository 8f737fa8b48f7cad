/**
 * The seed: a node that also holds the operator key, composed here and only here. Started in this
 * order (after the daemon's own identity, store and mesh; stopped in reverse):
 *   AutoEnroller (enrolls the seed itself, and every device only when the trust root's auto_enroll is on)
 *   → the seed's Distribution (owns every lineage feed and serves blocks; no prestage)
 *   → an observing RolloutController (`act: false`: decides and shows status, activates nothing)
 *   → any extra services the caller adds.
 * Routes: the operator's device routes (`/devices`, seed/device-routes.ts), `/invites`
 * (seed/invite-routes.ts), `/releases`
 * (seed/release-routes.ts), the rollout routes with the operator key, the dashboard and /metrics
 * (with the seed's publish refusals, seed/publish-metrics.ts).
 */

import { join } from 'node:path'
import { Daemon, type DaemonInit } from '../node/daemon.ts'
import { type DeviceParts, observerServices } from '../node/device-services.ts'
import type { DistributionInit } from '../node/install/distribution.ts'
import type { RolloutControllerInit } from '../node/rollout/rollout-controller.ts'
import type { OperatorSigner } from '../protocols/index.ts'
import { AutoEnroller } from './auto-enroller.ts'
import { AutoEnrollmentLedger } from './auto-enrollments.ts'
import { SEQ_FILE } from './constants.ts'
import { deviceRoutes } from './device-routes.ts'
import { seedDistribution } from './distribution.ts'
import { inviteRoutes } from './invite-routes.ts'
import { createPublishMetrics } from './publish-metrics.ts'
import { SeqAuthority } from './seq-authority.ts'

/** Options of the seed daemon: a daemon's plus the operator signer. */
export interface SeedDaemonInit extends Omit<DaemonInit, 'role'> {
  signer: OperatorSigner
  /** Enrolment lifetime in ms (none when omitted). */
  enrollmentTtlMs?: number
  /** Options of the observing rollout controller. */
  rollout?: RolloutControllerInit
  /** Options of the seed's distribution. */
  distribution?: DistributionInit
  /**
   * The operator's release seq counter (seed/seq-authority.ts): `<fleet dir>/release-seq.json`,
   * beside the operator key. Default: `release-seq.json` in the data directory.
   */
  seqFile?: string
}

/** The seed daemon, with its live parts once started (for tests and status). */
export class SeedDaemon extends Daemon {
  /** Distribution, controller and metrics, set as the daemon starts them. */
  readonly parts: DeviceParts

  constructor(init: SeedDaemonInit) {
    const { signer, enrollmentTtlMs, rollout, distribution, services, routes, seqFile, ...rest } = init
    const ledger = new AutoEnrollmentLedger()
    const seqs = new SeqAuthority({ file: seqFile ?? join(init.dataDir, SEQ_FILE) })
    const publishMetrics = createPublishMetrics()
    const sd = seedDistribution({ signer, distribution, seqs, metrics: publishMetrics })
    const observer = observerServices({ signer, rollout, distribution: sd.get })
    // GET /metrics serves the refused publishes too (llmesh_publish_refusals_total)
    observer.parts.registries = [...(observer.parts.registries ?? []), publishMetrics.registry]
    super({
      ...rest,
      role: 'seed',
      services: [
        (ctx) => new AutoEnroller({ signer, ttlMs: enrollmentTtlMs, ledger }, ctx),
        ...sd.services,
        ...observer.services,
        ...(services ?? []),
      ],
      routes: [
        (ctx) => deviceRoutes({ ctx, signer, ledger }),
        (ctx) => inviteRoutes({ ctx, signer }),
        ...sd.routes,
        ...observer.routes,
        ...(routes ?? []),
      ],
    })
    this.parts = observer.parts
  }
}

/** Creates (does not start) a seed daemon. */
export function createSeedDaemon(init: SeedDaemonInit): SeedDaemon {
  return new SeedDaemon(init)
}
