/**
 * Auto-enrolment on the seed: when the trust root's `auto_enroll` is true, every device that
 * describes itself in an anti-entropy round (and is neither enrolled with the same tags nor
 * revoked) gets a DeviceEnrollment signed with the operator key, gossiped to the fleet. The seed
 * enrolls itself at start. Enrolments already in flight are not signed twice.
 */

import type { DaemonContext, Service } from '../node/daemon.ts'
import type { Hello } from '../node/mesh/anti-entropy.ts'
import { type DeviceEnrollment, type OperatorSigner, signOperatorMessage } from '../protocols/index.ts'
import { SEED_TAG } from '../protocols/rollout/constants.ts'

/** Options of the auto-enroller. */
export interface AutoEnrollerInit {
  signer: OperatorSigner
  /** Enrolment lifetime in ms (none when omitted). */
  ttlMs?: number
}

/** Signs and gossips enrolments for devices that hold the join secret. */
export class AutoEnroller implements Service {
  private readonly ctx: DaemonContext
  private readonly init: AutoEnrollerInit
  private readonly pending = new Set<string>()
  private started = false
  private readonly onHello = (e: { peer: string; hello: Hello }): void => {
    void this.enroll(e.peer, e.hello)
  }

  constructor(init: AutoEnrollerInit, ctx: DaemonContext) {
    this.init = init
    this.ctx = ctx
  }

  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.ctx.mesh.antiEntropy.on('hello', this.onHello)
    await this.enroll(this.ctx.identity.peerId, this.ctx.config.hello)
    for (const [peer, hello] of this.ctx.mesh.antiEntropy.hellos) await this.enroll(peer, hello)
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.ctx.mesh.antiEntropy.off('hello', this.onHello)
  }

  /** Enrolls `device` unless it is enrolled with the same tags, revoked, or policy forbids it. */
  async enroll(device: string, hello: Hello): Promise<boolean> {
    const { store, logger } = this.ctx
    if (!this.started || !this.ctx.trust().auto_enroll) return false
    if (store.revocationOf(device) !== undefined || this.pending.has(device)) return false
    const cur = store.enrollmentOf(device)
    // seeds carry the reserved seed tag: cohorts never count them (they run no model)
    const tags = hello.role === 'seed' && !hello.tags.includes(SEED_TAG) ? [...hello.tags, SEED_TAG] : hello.tags
    if (cur !== undefined && [...cur.tags].sort().join(',') === [...tags].sort().join(',')) return false
    this.pending.add(device)
    try {
      const now = Date.now()
      const msg: DeviceEnrollment = {
        type: 'DeviceEnrollment',
        v: 1,
        fleet: this.ctx.config.fleet,
        device,
        tags,
        capabilities: hello.capabilities,
        // strictly after any earlier enrolment of the device (issued_at is its rollback sequence)
        issued_at: Math.max(now, (cur?.issued_at ?? 0) + 1),
        ...(this.init.ttlMs === undefined ? {} : { expires_at: now + this.init.ttlMs }),
      }
      await this.ctx.publish(await signOperatorMessage(msg, this.init.signer))
      logger.info({ device, tags }, 'device enrolled')
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
