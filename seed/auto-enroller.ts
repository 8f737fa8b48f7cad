/**
 * Auto-enrolment on the seed. The seed always enrolls itself at start. Other devices join with an
 * invite or the operator's approval (docs/protocol.md, "Membership"); only when the trust root's
 * `auto_enroll` is true (labs: anyone holding the join secret becomes a voter with the tags it
 * chooses), every device that describes itself in an anti-entropy round (and is neither enrolled
 * with the same tags, enrolled by an invite, nor revoked) gets a DeviceEnrollment signed with the
 * operator key, gossiped to the fleet. Enrolments already in flight are not signed twice.
 *
 * An operator's enrollment wins: when a device's latest enrollment was not made automatically
 * (see `AutoEnrollmentLedger`), its tags are the operator's and the device's declared tags are
 * ignored; such an enrollment is only renewed, with the operator's tags, once it has expired.
 */

import type { DaemonContext, Service } from '../node/daemon.ts'
import type { Hello } from '../node/mesh/anti-entropy.ts'
import { messageIdOfWire, type OperatorSigner, signOperatorMessage } from '../protocols/index.ts'
import { SEED_TAG } from '../protocols/rollout/constants.ts'
import type { DeviceEnrollment } from '../protocols/schemas/index.ts'
import { AutoEnrollmentLedger } from './auto-enrollments.ts'
import { buildEnrollment, type EnrollmentRecord, latestEnrollment } from './devices.ts'

/** Options of the auto-enroller. */
export interface AutoEnrollerInit {
  signer: OperatorSigner
  /** Enrolment lifetime in ms (none when omitted). */
  ttlMs?: number
  /** Which enrollments were automatic (shared with the device routes; a private one when omitted). */
  ledger?: AutoEnrollmentLedger
}

/** Signs and gossips enrolments for devices that hold the join secret. */
export class AutoEnroller implements Service {
  private readonly ctx: DaemonContext
  private readonly init: AutoEnrollerInit
  private readonly pending = new Set<string>()
  private readonly ledger: AutoEnrollmentLedger
  private started = false
  private readonly onHello = (e: { peer: string; hello: Hello }): void => {
    void this.enroll(e.peer, e.hello)
  }

  constructor(init: AutoEnrollerInit, ctx: DaemonContext) {
    this.init = init
    this.ctx = ctx
    this.ledger = init.ledger ?? new AutoEnrollmentLedger()
  }

  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    await this.ledger.load(this.ctx.config.dataDir, () =>
      this.ctx.store.list('DeviceEnrollment').map((m) => ({ digest: m.digest, bytes: m.bytes })),
    )
    this.ctx.mesh.antiEntropy.on('hello', this.onHello)
    await this.enroll(this.ctx.identity.peerId, this.ctx.config.hello)
    for (const [peer, hello] of this.ctx.mesh.antiEntropy.hellos) await this.enroll(peer, hello)
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.ctx.mesh.antiEntropy.off('hello', this.onHello)
    await this.ledger.flush()
  }

  /**
   * Enrolls `device` unless it is enrolled with the same tags, revoked, or policy forbids it.
   * Tags pinned by the operator are kept (and only renewed once expired).
   */
  async enroll(device: string, hello: Hello): Promise<boolean> {
    const { store, logger } = this.ctx
    if (!this.started) return false
    if (device !== this.ctx.identity.peerId && !this.ctx.trust().auto_enroll) return false
    if (store.revocationOf(device) !== undefined || this.pending.has(device)) return false
    // an invite's tags are the operator's: never replaced by what the device declares
    if (store.membershipOf(device).via === 'invite') return false
    const cur = store.enrollmentOf(device)
    const latest = latestEnrollment(
      store.forDevice(device).filter((m) => m.type === 'DeviceEnrollment') as EnrollmentRecord[],
    )
    const pinned = latest !== undefined && !this.ledger.isAuto(latest.digest)
    let tags: string[]
    if (pinned) {
      if (cur !== undefined) return false // the operator's enrollment is in force
      tags = [...(latest.message as DeviceEnrollment).tags]
    } else {
      // seeds carry the reserved seed tag: cohorts never count them (they run no model)
      tags = hello.role === 'seed' && !hello.tags.includes(SEED_TAG) ? [...hello.tags, SEED_TAG] : hello.tags
      if (cur !== undefined && [...cur.tags].sort().join(',') === [...tags].sort().join(',')) return false
    }
    this.pending.add(device)
    try {
      const msg = buildEnrollment({
        fleet: this.ctx.config.fleet,
        device,
        tags,
        capabilities: hello.capabilities,
        ...(hello.name === undefined ? {} : { name: hello.name }),
        // strictly after any earlier enrolment of the device (issued_at is its rollback sequence)
        current: latest?.message,
        now: Date.now(),
        ttlMs: this.init.ttlMs,
      })
      const wire = await signOperatorMessage(msg, this.init.signer)
      if (!pinned) this.ledger.add(messageIdOfWire(wire))
      await this.ctx.publish(wire)
      logger.info({ device, tags, pinned }, pinned ? 'operator enrollment renewed' : 'device enrolled')
      // gossip may not have grafted the new peer yet: push it with an anti-entropy round too
      const peer = this.ctx.mesh.libp2p.getConnections().find((c) => c.remotePeer.toString() === device)?.remotePeer
      if (peer !== undefined) void this.ctx.mesh.antiEntropy.sync(peer).catch(() => undefined)
      return true
    } catch (err) {
      logger.warn({ err, device }, 'auto-enrolment failed')
      return false
    } finally {
      this.pending.delete(device)
    }
  }
}
