/**
 * The seed: a node that also holds the operator key. It runs the daemon with role `seed` and an
 * auto-enroller (devices are enrolled automatically when the trust root allows it). Publishing
 * releases is added by the distribution work through `DaemonInit.services`.
 */

import { Daemon, type DaemonInit } from '../node/daemon.ts'
import type { OperatorSigner } from '../protocols/index.ts'
import { AutoEnroller } from './auto-enroller.ts'

/** Options of the seed daemon: a daemon's plus the operator signer. */
export interface SeedDaemonInit extends Omit<DaemonInit, 'role'> {
  signer: OperatorSigner
  /** Enrolment lifetime in ms (none when omitted). */
  enrollmentTtlMs?: number
}

/** Creates (does not start) a seed daemon. */
export function createSeedDaemon(init: SeedDaemonInit): Daemon {
  const { signer, enrollmentTtlMs, services, ...rest } = init
  return new Daemon({
    ...rest,
    role: 'seed',
    services: [(ctx) => new AutoEnroller({ signer, ttlMs: enrollmentTtlMs }, ctx), ...(services ?? [])],
  })
}
