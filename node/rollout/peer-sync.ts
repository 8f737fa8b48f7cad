/**
 * PeerSync: the controller's anti-entropy rounds. After start, going forward waits for a first
 * round (or `startupCatchUpMs`), then each forward step runs one more round with a few random
 * connected peers (bounded by `catchUpTimeoutMs`), so a device that was offline learns an abort
 * before it would activate. Missing verdict evidence asks for a round at most every
 * EVIDENCE_SYNC_MS. A full sweep would cost O(peers × messages): rounds go to CATCH_UP_PEERS peers.
 * A round that throws is a `peer-sync` loop error (counted, logged once per change), never an
 * unhandled rejection; the next tick asks again.
 */
import type { DaemonContext } from '../daemon.ts'
import type { Faults } from '../telemetry/faults.ts'
import { CATCH_UP_PEERS, CATCH_UP_TIMEOUT_MS, EVIDENCE_SYNC_MS, STARTUP_CATCH_UP_MS } from './constants.ts'

/** Options. */
export interface PeerSyncInit {
  catchUpTimeoutMs?: number
  startupCatchUpMs?: number
}

/** Anti-entropy rounds on the controller's behalf. */
export class PeerSync {
  private readonly mesh: DaemonContext['mesh']
  private readonly init: PeerSyncInit
  private readonly now: () => number
  private caughtUp = false
  private startedAt = 0
  private lastEvidenceSync = 0
  private readonly onSync = (): void => {
    this.caughtUp = true
  }

  private readonly faults: Faults | undefined

  /** `faults`: where a round that throws goes (the `peer-sync` loop), instead of an unhandled rejection. */
  constructor(mesh: DaemonContext['mesh'], init: PeerSyncInit, now: () => number, faults?: Faults) {
    this.mesh = mesh
    this.init = init
    this.now = now
    this.faults = faults
  }

  start(): void {
    this.startedAt = this.now()
    if (this.mesh.state === 'running') this.mesh.antiEntropy.on('sync', this.onSync)
  }

  stop(): void {
    if (this.mesh.state === 'running') this.mesh.antiEntropy.off('sync', this.onSync)
  }

  /** Asks a few peers for missing evidence, at most every EVIDENCE_SYNC_MS. */
  wantEvidence(): void {
    const now = this.now()
    if (now - this.lastEvidenceSync <= EVIDENCE_SYNC_MS || this.mesh.state !== 'running') return
    this.lastEvidenceSync = now
    this.syncWithSome(CATCH_UP_PEERS).then(
      () => this.faults?.ok('evidence'),
      (err: unknown) => this.faults?.fail('evidence', err),
    )
  }

  /**
   * Catches up before going forward. False: still waiting for a first round since start (try on
   * the next tick); true: a round ran (or timed out, or there is nobody to ask).
   */
  async beforeForward(): Promise<boolean> {
    const wait = this.init.startupCatchUpMs ?? STARTUP_CATCH_UP_MS
    if (!this.caughtUp && this.now() - this.startedAt < wait) return false
    if (this.mesh.state === 'running' && this.mesh.peers().length > 0) {
      const t = this.init.catchUpTimeoutMs ?? CATCH_UP_TIMEOUT_MS
      await Promise.race([this.syncWithSome(CATCH_UP_PEERS), new Promise((r) => setTimeout(r, t).unref())])
    }
    return true
  }

  /** One anti-entropy round with `n` random connected peers. */
  private async syncWithSome(n: number): Promise<void> {
    const mesh = this.mesh
    if (mesh.state !== 'running') return
    const byPeer = new Map(mesh.libp2p.getConnections().map((c) => [c.remotePeer.toString(), c.remotePeer]))
    const peers = [...byPeer.values()].sort(() => Math.random() - 0.5).slice(0, n)
    await Promise.allSettled(peers.map((p) => mesh.antiEntropy.sync(p)))
  }
}
