/**
 * Distribution service for the daemon: the node's model store, the replicator serving and
 * fetching blocks over libp2p, and the installer. With prestage on (the default, and the
 * release policy's `prestage`), every new release announced on the mesh is downloaded and
 * staged at once; activation is left to the rollout controller (`installer.activate`).
 * Plug in with `DaemonInit.services: [(ctx) => new Distribution(ctx, { … })]`.
 */

import type { DeviceEnrollment, InviteClaim, ReleaseManifest, Revocation } from '../../protocols/schemas/index.ts'
import type { DaemonContext } from '../daemon.ts'
import type { StoredMessage } from '../mesh/types.ts'
import { ModelStore, type ModelStoreInit } from '../store/model-store.ts'
import { type ReplicationStats, Replicator, type ReplicatorInit } from '../store/replicator.ts'
import { Installer, type InstallerInit } from './installer.ts'

/** The parts of the daemon context the service uses. */
export type DistributionContext = Pick<DaemonContext, 'logger' | 'mesh' | 'store' | 'status' | 'config'>

/** Options. */
export interface DistributionInit {
  /** Download releases as soon as they are announced (default true; the seed turns it off). */
  prestage?: boolean
  store?: Omit<ModelStoreInit, 'dataDir'>
  replicator?: ReplicatorInit
  installer?: Omit<InstallerInit, 'dataDir'>
}

/** Store + replicator + installer, started and stopped together. */
export class Distribution {
  readonly store: ModelStore
  readonly installer: Installer
  private replicatorValue: Replicator | null = null
  private offStall: (() => void) | undefined
  private readonly ctx: DistributionContext
  private readonly init: DistributionInit
  private running = false
  private readonly onRelease = (m: StoredMessage<ReleaseManifest>) => this.maybePrestage(m.message)
  /** A revoked device gets no more blocks from this node, and its open session is closed. */
  private readonly onRevocation = (m: StoredMessage<Revocation>) => this.replicatorValue?.drop(m.message.device)
  /**
   * Only enrolled devices replicate (a pending one gets no block): once a device is enrolled (by the
   * operator or an invite), a session with it is tried; once this node is, with every peer.
   */
  private readonly onMember = (m: StoredMessage<DeviceEnrollment | InviteClaim>) => {
    const device = m.message.device
    this.replicatorValue?.reconsider(device === this.ctx.mesh.libp2p.peerId.toString() ? undefined : device)
  }

  constructor(ctx: DistributionContext, init: DistributionInit = {}) {
    this.ctx = ctx
    this.init = init
    this.store = new ModelStore({ dataDir: ctx.config.dataDir, ...init.store })
    this.installer = new Installer(
      { store: this.store, logger: ctx.logger.child({ svc: 'installer' }), loops: ctx.status.loops },
      { dataDir: ctx.config.dataDir, ...init.installer },
    )
  }

  /** Replication figures, or undefined before start (for /metrics). */
  replicationStats(): ReplicationStats | undefined {
    return this.replicatorValue?.stats()
  }

  /** The replicator (after start). */
  get replicator(): Replicator {
    if (this.replicatorValue === null) throw new Error('distribution is not started')
    return this.replicatorValue
  }

  /** Opens the store, starts replication and the installer, prestages known releases. Idempotent. */
  async start(): Promise<void> {
    if (this.running) return
    await this.store.start()
    await this.installer.start() // installed files are the source of their blocks before any peer asks
    const allowed = this.init.replicator?.isFleetPeer
    this.replicatorValue ??= new Replicator(
      { libp2p: this.ctx.mesh.libp2p, store: this.store, logger: this.ctx.logger.child({ svc: 'replicator' }) },
      {
        ...this.init.replicator,
        isFleetPeer: (peer) => this.ctx.store.isEnrolled(peer) && (allowed?.(peer) ?? true),
        // `--wan-rate`: replication over WAN links goes through the node's token buckets
        throttle: this.init.replicator?.throttle ?? ((conn) => this.ctx.mesh.wanThrottle(conn)),
      },
    )
    await this.replicatorValue.start()
    // a stalled download restarts replication sessions: hypercore never re-asks blocks in flight
    // to a peer that stopped answering, nor asks a peer it paused (node/store/replicator.ts)
    this.offStall ??= recycleOnStall(this.installer, this.replicatorValue)
    this.ctx.status.setModels(() => this.installer.status())
    this.ctx.status.addSection('replication', () => this.replicatorValue?.stats())
    this.ctx.store.on('release', this.onRelease)
    this.ctx.store.on('revocation', this.onRevocation)
    this.ctx.store.on('enrollment', this.onMember)
    this.ctx.store.on('claim', this.onMember)
    this.running = true
    const newest = new Map<string, ReleaseManifest>()
    for (const r of this.ctx.store.releases()) {
      const cur = newest.get(r.message.model)
      if (cur === undefined || r.message.seq > cur.seq) newest.set(r.message.model, r.message)
    }
    for (const m of newest.values()) this.maybePrestage(m)
  }

  /** Stops downloads, replication and the store. Idempotent. */
  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    this.ctx.store.off('release', this.onRelease)
    this.ctx.store.off('revocation', this.onRevocation)
    this.ctx.store.off('enrollment', this.onMember)
    this.ctx.store.off('claim', this.onMember)
    this.offStall?.()
    this.offStall = undefined
    await this.installer.stop()
    await this.replicatorValue?.stop()
    await this.store.stop()
  }

  private maybePrestage(m: ReleaseManifest): void {
    if (!this.running || this.init.prestage === false || m.policy.prestage === false) return
    this.installer.prestage(m).catch((err: Error & { code?: string }) => {
      if (this.running) this.ctx.logger.warn({ model: m.model, version: m.version, code: err.code }, err.message)
    })
  }
}

/** Restarts `replicator`'s sessions whenever a download of `installer` stalls; returns the unsubscribe function. */
export function recycleOnStall(
  installer: Pick<Installer, 'onStall'>,
  replicator: Pick<Replicator, 'recycle'>,
): () => void {
  return installer.onStall((model, version) => {
    replicator.recycle(`download of ${model}@${version} stalled`)
  })
}
