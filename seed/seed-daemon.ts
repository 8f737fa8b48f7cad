/**
 * The seed: a node that also holds the operator key. It runs the daemon with role `seed` and an
 * auto-enroller (devices are enrolled automatically when the trust root allows it) and the operator's
 * device routes (`/devices`: list, enroll, re-tag, revoke; seed/device-routes.ts). Publishing
 * releases is added by the distribution work through `DaemonInit.services`.
 */

import { Daemon, type DaemonInit } from '../node/daemon.ts'
import type { OperatorSigner } from '../protocols/index.ts'
import { AutoEnroller } from './auto-enroller.ts'
import { AutoEnrollmentLedger } from './auto-enrollments.ts'
import { deviceRoutes } from './device-routes.ts'

/** Options of the seed daemon: a daemon's plus the operator signer. */
export interface SeedDaemonInit extends Omit<DaemonInit, 'role'> {
  signer: OperatorSigner
  /** Enrolment lifetime in ms (none when omitted). */
  enrollmentTtlMs?: number
}

/** Creates (does not start) a seed daemon. */
export function createSeedDaemon(init: SeedDaemonInit): Daemon {
  const { signer, enrollmentTtlMs, services, routes, ...rest } = init
  const ledger = new AutoEnrollmentLedger()
  return new Daemon({
    ...rest,
    role: 'seed',
    services: [(ctx) => new AutoEnroller({ signer, ttlMs: enrollmentTtlMs, ledger }, ctx), ...(services ?? [])],
    routes: [(ctx) => deviceRoutes({ ctx, signer, ledger }), ...(routes ?? [])],
  })
}
