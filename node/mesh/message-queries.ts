/**
 * The read side of the message store (node/mesh/message-store.ts extends it): typed lookups over
 * the in-memory index (by id, wire hash, type, model, device), what the fleet's releases, trust
 * root and membership are according to the messages held, and the sets anti-entropy exchanges.
 * Nothing here writes, verifies or touches the disk; every read is of memory only.
 */
import { EventEmitter } from 'node:events'
import { type ClaimFacts, enrollmentsInForce, membershipOf } from '../../protocols/membership/membership.ts'
import type { ReconcileSet } from '../../protocols/reconcile.ts'
import type {
  DeviceEnrollment,
  MessageType,
  ReleaseManifest,
  Revocation,
  TrustRoot,
} from '../../protocols/schemas/index.ts'
import { MessageIndex, reportTime } from './message-index.ts'
import type { AnyMessage, MessageEvents, StoredMessage } from './types.ts'

/** Reads of the messages a store holds (the store's typed events are declared here too). */
export abstract class MessageQueries extends EventEmitter<MessageEvents> {
  protected readonly ix = new MessageIndex()
  /** Clock, ms since epoch. */
  protected readonly now: () => number
  /** How long health reports are kept (the default window of `syncDigests` and `syncSet`). */
  protected readonly retention: number

  protected constructor(now: () => number, retentionMs: number) {
    super()
    this.now = now
    this.retention = retentionMs
  }

  /** Whether a message with this digest is known. */
  has(digest: string): boolean {
    return this.ix.byDigest.has(digest)
  }

  /** Wire bytes of every message held. */
  get wireBytes(): number {
    return this.ix.wireBytes
  }

  /** The message with this digest. */
  get(digest: string): StoredMessage | undefined {
    return this.ix.byDigest.get(digest)
  }

  /** The id of these exact wire bytes (by their sha256) when held: cheaper than verifying them again. */
  heldWire(wireSha256: string): string | undefined {
    return this.ix.byWire.get(wireSha256)
  }

  /** Number of messages held. */
  get size(): number {
    return this.ix.byDigest.size
  }

  /** Every message of one type, oldest first by arrival. */
  list<T extends MessageType>(type: T): Array<StoredMessage<Extract<AnyMessage, { type: T }>>> {
    return this.ix.collect(this.ix.byType.get(type)) as Array<StoredMessage<Extract<AnyMessage, { type: T }>>>
  }

  /** Every message about one model. */
  forModel(model: string): StoredMessage[] {
    return this.ix.collect(this.ix.byModel.get(model))
  }

  /** Every message about (or by) one device. */
  forDevice(device: string): StoredMessage[] {
    return this.ix.collect(this.ix.byDevice.get(device))
  }

  /** Release manifests, newest sequence first per model. */
  releases(): Array<StoredMessage<ReleaseManifest>> {
    return this.list('ReleaseManifest').sort(
      (a, b) => a.message.model.localeCompare(b.message.model) || b.message.seq - a.message.seq,
    )
  }

  /** Highest release sequence seen for a model (0 when none): the rollback floor. */
  highestReleaseSeq(model: string): number {
    let seq = 0
    for (const r of this.list('ReleaseManifest'))
      if (r.message.model === model && r.message.seq > seq) seq = r.message.seq
    return seq
  }

  /** The newest trust root held, if any. */
  latestTrustRoot(): TrustRoot | undefined {
    let best: TrustRoot | undefined
    for (const r of this.list('TrustRoot')) if (best === undefined || r.message.version > best.version) best = r.message
    return best
  }

  /** The revocation of a device, if any (revocations are final). */
  revocationOf(device: string): Revocation | undefined {
    return this.ix.collect(this.ix.adminOf.get(device)).find((m) => m.type === 'Revocation')?.message as
      | Revocation
      | undefined
  }

  /**
   * The enrollment in force of a device (none when revoked, expired or pending): its newest
   * operator enrollment, else the invite claim it won (protocols/membership).
   */
  enrollmentOf(device: string, now = this.now()): DeviceEnrollment | undefined {
    return this.membershipOf(device, now).enrollment
  }

  /** A device's membership (`enrolled`, `pending`, `revoked`) and the enrollment in force. */
  membershipOf(device: string, now = this.now()): ReturnType<typeof membershipOf> {
    const admin = this.ix.collect(this.ix.adminOf.get(device))
    const revocations = admin.filter((m) => m.type === 'Revocation').map((m) => m.message as Revocation)
    const enrollments = admin.filter((m) => m.type === 'DeviceEnrollment').map((m) => m.message as DeviceEnrollment)
    // the winners of an invite depend on every claim of it: gather the invites this device claimed
    const invites = new Set<string>()
    for (const m of admin) {
      const c = m.type === 'InviteClaim' ? this.ix.claims.get(m.digest) : undefined
      if (c !== undefined && c.claim.device === device) invites.add(c.invite.id)
    }
    const claims = [...invites].flatMap((id) => this.claimsOf(id))
    return membershipOf(device, { enrollments, revocations, claims, now })
  }

  /** The claims held of one invite. */
  claimsOf(inviteId: string): ClaimFacts[] {
    const out: ClaimFacts[] = []
    for (const d of this.ix.claimsOfInvite.get(inviteId) ?? []) {
      const c = this.ix.claims.get(d)
      if (c !== undefined) out.push(c)
    }
    return out
  }

  /** Every claim held, with its invite. */
  claims(): ClaimFacts[] {
    return [...this.ix.claims.values()]
  }

  /** The one enrollment in force per enrolled, unrevoked device (operator's or by invite). */
  enrollmentsInForce(now = this.now()): DeviceEnrollment[] {
    return enrollmentsInForce({
      enrollments: this.list('DeviceEnrollment').map((m) => m.message),
      revocations: this.list('Revocation').map((m) => m.message),
      claims: this.claims(),
      now,
    })
  }

  /** Whether a device holds a valid, unrevoked enrollment. */
  isEnrolled(device: string, now = this.now()): boolean {
    return this.enrollmentOf(device, now) !== undefined
  }

  /**
   * Digests anti-entropy exchanges: every message except health reports whose window ended more
   * than `healthWindowMs` ago (default: the retention).
   */
  syncDigests(now = this.now(), healthWindowMs = this.retention): string[] {
    const out: string[] = []
    for (const m of this.ix.byDigest.values()) {
      if (m.type === 'HealthReport' && reportTime(m) < now - healthWindowMs) continue
      out.push(m.digest)
    }
    return out
  }

  /**
   * The set anti-entropy reconciles (protocols/reconcile.ts): the ids `syncDigests` lists, sorted by
   * reconciliation key. O(n) per call, with no sort and no parsing.
   */
  syncSet(now = this.now(), healthWindowMs = this.retention): ReconcileSet {
    return this.ix.reconcile.snapshot(now - healthWindowMs)
  }
}
