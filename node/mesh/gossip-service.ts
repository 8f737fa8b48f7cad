/**
 * Gossip: subscribes to the fleet's three topics and installs a validator on each that runs every
 * message through the ingest pipeline (verify, then store). Valid new messages are Accepted (and
 * so forwarded), already-known ones Ignored, invalid ones Rejected so gossipsub's peer score
 * punishes the peer that sent them. A message of a type that does not belong on the topic is
 * Rejected too. Refusals an honest forwarder can cause are Ignored (not forwarded, not stored,
 * not punished; `IGNORED_CODES`). Publishing verifies locally first: the node never sends what
 * it would refuse.
 * Before any of that, each message is charged to its delivering peer's ingest budget
 * (gossip-budget.ts): past it, the message is dropped unread (Ignored, counted as `dropped`) and the
 * peer loses score. A peer sending messages signed by its own unenrolled key loses score the same
 * way (NOT_ENROLLED_PENALTY), and so does a signer sending its own messages past its quota
 * (QUOTA_PENALTY; `refusalVerdict`).
 */
import type { GossipSub } from '@libp2p/gossipsub'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { fleetTopic, TOPIC_HEALTH, TOPIC_RELEASES, TOPIC_ROLLOUT } from '../../protocols/constants.ts'
import { VerificationError } from '../../protocols/errors.ts'
import type { MessageType } from '../../protocols/schemas/index.ts'
import type { Logger } from '../logger.ts'
import { NOT_ENROLLED_PENALTY, QUOTA_PENALTY } from './constants.ts'
import { GossipBudget, type GossipBudgetLimits } from './gossip-budget.ts'
import type { Ingest, IngestResult } from './ingest.ts'
import type { VerifiedWire } from './types.ts'

/** Base topic per message type. */
export const TOPIC_OF_TYPE = {
  ReleaseManifest: TOPIC_RELEASES,
  AgentRelease: TOPIC_RELEASES,
  TrustRoot: TOPIC_RELEASES,
  OperatorCommand: TOPIC_ROLLOUT,
  Verdict: TOPIC_ROLLOUT,
  DeviceEnrollment: TOPIC_ROLLOUT,
  Revocation: TOPIC_ROLLOUT,
  // claims carry the invite they present; a bare invite is refused by the verifier
  InviteClaim: TOPIC_ROLLOUT,
  DeviceInvite: TOPIC_ROLLOUT,
  SwarmKeyRotation: TOPIC_ROLLOUT,
  HealthReport: TOPIC_HEALTH,
} as const satisfies Record<MessageType, string>

/**
 * Refusals that do not cost the sender score, because an honest peer may send them:
 * - ERR_ROLLBACK: an older release or root, forwarded by a peer that saw it first;
 * - ERR_THRESHOLD: a correctly signed rotation envelope that arrived before its co-signatures;
 * - ERR_UNKNOWN_SIGNER: signed by a key this node's trust root does not hold. That depends on
 *   which root the node has: during an operator key rotation a peer that adopted the new root
 *   forwards releases and commands signed by the new key before this node has the rotation (or an
 *   old-root peer forwards what the retired key signed). As a Reject, every honest forwarder would
 *   pay P4 for it, and the fleet would graylist itself mid-rotation. A forger gains nothing: the
 *   lookup comes before any crypto, the message is never stored nor forwarded, and its peer's
 *   ingest budget bounds how many it can send (anti-entropy already treated it so);
 * - ERR_NOT_ENROLLED: a report of a device whose enrollment has not reached this node yet (a node
 *   that just joined would otherwise punish every honest neighbour); refused before any crypto,
 *   never stored nor forwarded, so an unenrolled key gains nothing;
 * - ERR_FUTURE: dated ahead of this node's clock by more than the skew, but maybe not of the
 *   forwarder's; offered again by anti-entropy once time has caught up.
 * - ERR_EXPIRED: a genuine message (checked after its signature) that expired by this node's clock
 *   while it travelled, or was still valid by the forwarder's: as a Reject it would charge every
 *   honest peer that forwarded it (see `refusalVerdict`); anti-entropy already counts it as honest.
 * - ERR_INVITE_USED: an invite claim that can no longer win, forwarded by a peer that held fewer
 *   claims of that invite.
 */
export const IGNORED_CODES: ReadonlySet<string> = new Set([
  'ERR_INVITE_USED',
  'ERR_ROLLBACK',
  'ERR_THRESHOLD',
  'ERR_UNKNOWN_SIGNER',
  'ERR_NOT_ENROLLED',
  'ERR_FUTURE',
  'ERR_EXPIRED',
])

/**
 * What the validator answers for a message ingest refused with `code`, signed by `signer` and
 * delivered by `peer`, and the behaviour penalty (P7) the delivering peer gets.
 * Only a refusal every node makes alike is a Reject: gossipsub then charges an invalid delivery
 * (P4) to the peer that delivered it *and to every peer whose copy of it arrives during or after
 * the validation*, so a refusal that depends on this node's own state must never be one. A
 * signer's quota does (which of its messages this node already holds): a flooder's report the
 * seed refused past quota, Rejected, cost the honest devices that had accepted and forwarded it
 * their score, and the seed banned them in the middle of the flood (test/lan/store-flood.test.ts).
 * So past quota is Ignored, and only the signer sending its own messages is punished, by a
 * behaviour penalty on that peer alone.
 */
export function refusalVerdict(
  code: string,
  signer: string | undefined,
  peer: string,
): { result: 'ignore' | 'reject'; penalty: number } {
  const own = signer === peer
  if (code === 'ERR_QUOTA') return { result: 'ignore', penalty: own ? QUOTA_PENALTY : 0 }
  // a stranger sending messages it signed itself: a behaviour penalty, as for a budget drop. It
  // decays within seconds, so a device whose enrollment is still on its way (a report per
  // interval) keeps its score, while a flood goes under the graylist threshold and is banned
  if (code === 'ERR_NOT_ENROLLED') return { result: 'ignore', penalty: own ? NOT_ENROLLED_PENALTY : 0 }
  return { result: IGNORED_CODES.has(code) ? 'ignore' : 'reject', penalty: 0 }
}

/** Options of the gossip service. */
export interface GossipServiceInit {
  fleet: string
  /** Per-peer ingest budgets beyond the defaults (tests). */
  budget?: Partial<GossipBudgetLimits>
}

/** What the gossip service uses. */
export interface GossipServiceComponents {
  pubsub: GossipSub
  ingest: Ingest
  logger: Logger
  /** Lowers a peer's gossip score (a behaviour penalty) when it passes its budget. */
  penalize?: (peer: PeerId, penalty: number) => void
  now?: () => number
}

/** Counts of validator outcomes (tests and /status read them). */
export interface GossipCounters {
  accepted: number
  ignored: number
  rejected: number
  /** Dropped unread: the delivering peer was over its ingest budget (also Ignored to gossipsub). */
  dropped: number
}

/** The fleet's gossip topics with verifying validators. */
export class GossipService {
  private readonly pubsub: GossipSub
  private readonly ingest: Ingest
  private readonly log: Logger
  private readonly penalize: ((peer: PeerId, penalty: number) => void) | undefined
  private readonly topics: Map<string, string>
  private started = false
  readonly counters: GossipCounters = { accepted: 0, ignored: 0, rejected: 0, dropped: 0 }
  /** Per-peer ingest budgets, with what they dropped. */
  readonly budget: GossipBudget

  constructor(components: GossipServiceComponents, init: GossipServiceInit) {
    this.pubsub = components.pubsub
    this.ingest = components.ingest
    this.log = components.logger
    this.penalize = components.penalize
    this.budget = new GossipBudget(
      { logger: this.log, penalize: components.penalize, now: components.now },
      init.budget,
    )
    this.topics = new Map(
      [TOPIC_RELEASES, TOPIC_HEALTH, TOPIC_ROLLOUT].map((t) => [fleetTopic(t, init.fleet), t] as const),
    )
  }

  /** The fleet-scoped topic names. */
  topicNames(): string[] {
    return [...this.topics.keys()]
  }

  /** Fleet-scoped topic of a message type. */
  topicOf(type: MessageType): string {
    for (const [full, base] of this.topics) if (base === TOPIC_OF_TYPE[type]) return full
    throw new Error(`no topic for ${type}`)
  }

  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    for (const [topic, base] of this.topics) {
      this.pubsub.topicValidators.set(topic, (peer, msg) =>
        this.started ? this.validate(topic, base, peer, msg.data) : Promise.resolve(TopicValidatorResult.Ignore),
      )
      this.pubsub.subscribe(topic)
    }
  }

  /**
   * Stops validating: what arrives until the host stops is Ignored (neither stored nor forwarded,
   * nobody punished). The topics stay subscribed on purpose: gossipsub answers an unsubscribe with a
   * PRUNE asking every mesh peer to back off from this node for 10 s, and a node started again
   * within them (a daemon restart, an agent update) GRAFTs, is charged a behaviour penalty per topic
   * by each peer, falls under the graylist threshold with the fleet's three topics, and is banned by
   * every peer for PEER_BAN_MS (test/mesh/gossip-restart.test.ts). The host's stop closes the
   * connections; a peer drops a disconnected peer from its meshes without a backoff.
   */
  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
  }

  /**
   * Verifies, stores and publishes wire bytes. Throws the VerificationError when the node itself
   * would refuse them. Returns the ingest result (`duplicate` when already known: re-sent anyway).
   */
  async publish(bytes: Uint8Array): Promise<IngestResult> {
    const res = await this.ingest.ingest(bytes, 'local')
    if (res.status === 'rejected') throw res.error
    const stored = this.ingest.stored(res.status === 'accepted' ? res.value.digest : res.digest)
    if (stored === undefined) throw new Error('published message vanished from the store')
    await this.pubsub.publish(this.topicOf(stored.type), stored.bytes)
    return res
  }

  private async validate(topic: string, base: string, peer: PeerId, data: Uint8Array): Promise<TopicValidatorResult> {
    const filter = (v: VerifiedWire): VerificationError | undefined =>
      TOPIC_OF_TYPE[v.type] === base ? undefined : new VerificationError('ERR_UNKNOWN_TYPE', `${v.type} on ${topic}`)
    if (!this.budget.admit(peer, data.byteLength)) {
      this.counters.dropped++
      return TopicValidatorResult.Ignore
    }
    let res: IngestResult
    // ingest hashes, parses and verifies synchronously, up to its first await (the store's write)
    const cpu = process.threadCpuUsage()
    try {
      const pending = this.ingest.ingest(data, 'gossip', peer.toString(), filter)
      this.budget.spent(peer, cpu)
      res = await pending
    } catch (err) {
      this.log.error({ err, topic }, 'gossip validator failed')
      this.counters.ignored++
      return TopicValidatorResult.Ignore
    }
    if (res.status === 'accepted') {
      this.counters.accepted++
      return TopicValidatorResult.Accept
    }
    if (res.status === 'duplicate') {
      this.counters.ignored++
      return TopicValidatorResult.Ignore
    }
    const verdict = refusalVerdict(res.error.code, res.signer, peer.toString())
    if (verdict.penalty > 0) this.penalize?.(peer, verdict.penalty)
    if (verdict.result === 'ignore') {
      this.counters.ignored++
      return TopicValidatorResult.Ignore
    }
    this.counters.rejected++
    return TopicValidatorResult.Reject
  }
}
