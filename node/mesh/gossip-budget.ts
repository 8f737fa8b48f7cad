/**
 * Per-peer ingest budget of gossip: what one peer may cost this node's validators per interval,
 * checked before a message is hashed, parsed or verified.
 *
 * How it works: each propagation peer (the peer that delivered the message, not its author) has a
 * window (GOSSIP_BUDGET_INTERVAL_MS) counting its messages and bytes and the CPU time ingest spent
 * on them (the synchronous part of ingest: hashing, JSON parsing, signature checks; the store's
 * write is I/O). A message past the message or byte budget, or arriving once the CPU budget is
 * spent, is dropped unread until the window ends: the validator answers Ignore and the peer gets a
 * gossipsub behaviour penalty (P7) per dropped message, so a peer that keeps flooding falls under
 * the graylist threshold and gossipsub discards its RPCs before they reach any validator.
 * Ignore, not Reject: Reject's penalty (P4) also lands on every peer that delivered the same
 * message id, and a message dropped for a budget may be valid and forwarded by honest peers that
 * accepted it. One warning per peer and window is logged; every drop is counted by limit.
 */
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../logger.ts'
import { type BudgetLimit, type BudgetLimits, PeerBudgets } from './anti-entropy-budget.ts'
import {
  GOSSIP_BUDGET_BYTES,
  GOSSIP_BUDGET_CPU_MS,
  GOSSIP_BUDGET_INTERVAL_MS,
  GOSSIP_BUDGET_MESSAGES,
  GOSSIP_BUDGET_PENALTY,
} from './constants.ts'

/** Limits per peer and interval (`frames`: messages). */
export type GossipBudgetLimits = Omit<BudgetLimits, 'invalid'>

/** The defaults (node/mesh/constants.ts). */
export const DEFAULT_GOSSIP_BUDGET: GossipBudgetLimits = {
  intervalMs: GOSSIP_BUDGET_INTERVAL_MS,
  frames: GOSSIP_BUDGET_MESSAGES,
  bytes: GOSSIP_BUDGET_BYTES,
  cpuMs: GOSSIP_BUDGET_CPU_MS,
}

/** Why a message was dropped: the message count, byte or CPU budget of its peer. */
export type GossipDropLimit = 'messages' | 'bytes' | 'cpu'

/** What the budget uses. */
export interface GossipBudgetComponents {
  logger: Logger
  /** Lowers a peer's gossip score (a behaviour penalty); none: dropping only. */
  penalize?: (peer: PeerId, penalty: number) => void
  now?: () => number
}

const LIMIT_NAME: Record<BudgetLimit, GossipDropLimit> = { frames: 'messages', bytes: 'bytes', cpu: 'cpu' }

/** The gossip budgets of every peer, with what they dropped. */
export class GossipBudget {
  private readonly budgets: PeerBudgets
  private readonly c: GossipBudgetComponents
  /** Messages dropped unread, by the limit they passed (for /status and /metrics). */
  readonly drops: Record<GossipDropLimit, number> = { messages: 0, bytes: 0, cpu: 0 }

  constructor(components: GossipBudgetComponents, init: Partial<GossipBudgetLimits> = {}) {
    this.c = components
    // invalid messages are gossipsub's own business (Reject): never counted here
    this.budgets = new PeerBudgets(
      { ...DEFAULT_GOSSIP_BUDGET, ...init, invalid: Number.POSITIVE_INFINITY },
      components.now,
    )
  }

  /** Charges one message of `peer`: false when it must be dropped unread (counted, logged once, penalised). */
  admit(peer: PeerId, bytes: number): boolean {
    const key = peer.toString()
    const over = this.budgets.charge(key, bytes)
    if (over === undefined) return true
    const limit = LIMIT_NAME[over]
    this.drops[limit]++
    if (this.budgets.warnOnce(key))
      this.c.logger.warn(
        { peer: key, limit },
        'gossip peer over its ingest budget: its messages are dropped unread until the interval ends',
      )
    this.c.penalize?.(peer, GOSSIP_BUDGET_PENALTY)
    return false
  }

  /** Adds the CPU time of this thread since `since` (process.threadCpuUsage) to the peer's budget. */
  spent(peer: PeerId, since: NodeJS.CpuUsage): void {
    const d = process.threadCpuUsage(since)
    this.budgets.spent(peer.toString(), (d.user + d.system) / 1000)
  }
}
