/**
 * Per-peer budgets of anti-entropy: what one peer may cost this node per interval.
 *
 * How it works: each peer has a window (AE_BUDGET_INTERVAL_MS) counting the frames and bytes it
 * sent, the CPU time spent on them, and its invalid frames. A frame past the frame or byte budget,
 * or arriving once the CPU budget is spent, is refused: the round's stream is aborted and new
 * rounds of that peer are refused until the window ends. The AE_INVALID_FRAMES_MAX-th invalid
 * frame of a window disconnects the peer and costs it gossip score (the caller's `punish`). One
 * warning per peer per window is logged (`warnOnce`); everything is counted.
 */
import { LlmeshError } from '../../protocols/errors.ts'
import {
  AE_BUDGET_BYTES,
  AE_BUDGET_CPU_MS,
  AE_BUDGET_FRAMES,
  AE_BUDGET_INTERVAL_MS,
  AE_BUDGET_PEERS,
  AE_INVALID_FRAMES_MAX,
} from './constants.ts'

/** Limits per peer and interval. */
export interface BudgetLimits {
  intervalMs: number
  frames: number
  bytes: number
  cpuMs: number
  invalid: number
}

/** The defaults (node/mesh/constants.ts). */
export const DEFAULT_BUDGET: BudgetLimits = {
  intervalMs: AE_BUDGET_INTERVAL_MS,
  frames: AE_BUDGET_FRAMES,
  bytes: AE_BUDGET_BYTES,
  cpuMs: AE_BUDGET_CPU_MS,
  invalid: AE_INVALID_FRAMES_MAX,
}

interface Window {
  since: number
  frames: number
  bytes: number
  cpuMs: number
  invalid: number
  over: boolean
  warned: boolean
}

/** Why a peer's frame was refused. */
export type BudgetLimit = 'frames' | 'bytes' | 'cpu'

/** Totals since start (for /status and tests). */
export interface BudgetCounters {
  /** Frames refused past a budget, by limit. */
  overBudget: Record<BudgetLimit, number>
  /** Rounds refused at once because the peer was over budget. */
  refusedRounds: number
  invalidFrames: number
  /** Peers disconnected for invalid frames. */
  disconnects: number
}

/** The budgets of every peer. */
export class PeerBudgets {
  private readonly limits: BudgetLimits
  private readonly now: () => number
  private readonly peers = new Map<string, Window>()
  readonly counters: BudgetCounters = {
    overBudget: { frames: 0, bytes: 0, cpu: 0 },
    refusedRounds: 0,
    invalidFrames: 0,
    disconnects: 0,
  }

  constructor(limits: Partial<BudgetLimits> = {}, now: () => number = Date.now) {
    this.limits = { ...DEFAULT_BUDGET, ...limits }
    this.now = now
  }

  private window(peer: string): Window {
    const t = this.now()
    let w = this.peers.get(peer)
    if (w === undefined || t - w.since >= this.limits.intervalMs) {
      w = { since: t, frames: 0, bytes: 0, cpuMs: 0, invalid: 0, over: false, warned: false }
    }
    // most recently seen last: the first entry is the one forgotten
    this.peers.delete(peer)
    this.peers.set(peer, w)
    if (this.peers.size > AE_BUDGET_PEERS) this.peers.delete(this.peers.keys().next().value as string)
    return w
  }

  /** Whether the peer is over a budget in this window (its new rounds are refused). */
  blocked(peer: string): boolean {
    const over = this.window(peer).over
    if (over) this.counters.refusedRounds++
    return over
  }

  /** Charges one received frame; returns the limit it passes, if any (then the peer is over budget). */
  charge(peer: string, bytes: number): BudgetLimit | undefined {
    const w = this.window(peer)
    w.frames++
    w.bytes += bytes
    const limit: BudgetLimit | undefined =
      w.frames > this.limits.frames
        ? 'frames'
        : w.bytes > this.limits.bytes
          ? 'bytes'
          : w.cpuMs > this.limits.cpuMs
            ? 'cpu'
            : undefined
    if (limit !== undefined) {
      w.over = true
      this.counters.overBudget[limit]++
    }
    return limit
  }

  /** Adds CPU time spent on the peer's frames. */
  spent(peer: string, ms: number): void {
    this.window(peer).cpuMs += ms
  }

  /** Counts an invalid frame; true when it reaches the limit (disconnect and penalise now). */
  invalid(peer: string): boolean {
    const w = this.window(peer)
    w.invalid++
    this.counters.invalidFrames++
    if (w.invalid !== this.limits.invalid) return false
    w.over = true
    this.counters.disconnects++
    return true
  }

  /** True the first time it is asked for a peer in a window: log one warning, not one per frame. */
  warnOnce(peer: string): boolean {
    const w = this.window(peer)
    if (w.warned) return false
    w.warned = true
    return true
  }
}

/** A frame refused for a peer's budget (the round's stream is aborted). */
export class BudgetError extends LlmeshError {
  declare readonly code: 'ERR_BUDGET'
  readonly limit: BudgetLimit | 'invalid'
  constructor(limit: BudgetLimit | 'invalid', peer: string) {
    super('ERR_BUDGET', `anti-entropy budget of ${peer} exceeded (${limit})`)
    this.name = 'BudgetError'
    this.limit = limit
  }
}
