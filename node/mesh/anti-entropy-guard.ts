/**
 * What anti-entropy does with each frame a peer sends (node/mesh/anti-entropy.ts): charge it to the
 * peer's budgets (anti-entropy-budget.ts), decode control frames with the pre-parse checks of
 * protocols/anti-entropy.ts, ingest message frames (charged with the CPU of ingest's synchronous
 * part: hashing, parsing, verifying; the store's write is I/O, and other work runs meanwhile), and
 * count invalid frames: one warning per peer and interval, and past the limit the peer is
 * disconnected and its gossip score lowered.
 */
import type { PeerId } from '@libp2p/interface'
import type { lpStream } from '@libp2p/utils'
import { decodeFrame } from '../../protocols/anti-entropy.ts'
import type { Logger } from '../logger.ts'
import { BudgetError, type BudgetLimit, type PeerBudgets } from './anti-entropy-budget.ts'
import { AE_SCORE_PENALTY } from './constants.ts'
import { IGNORED_CODES } from './gossip-service.ts'
import type { Ingest } from './ingest.ts'

/** What the guard uses. */
export interface PeerGuardComponents {
  budgets: PeerBudgets
  logger: Logger
  /** Closes every connection to the peer. */
  hangUp: (peer: PeerId) => Promise<void>
  /** Lowers the peer's gossip score (none: disconnecting only). */
  penalize?: (peer: PeerId, penalty: number) => void
}

/** Budgets and validity of one node's anti-entropy peers. */
export class PeerGuard {
  private readonly c: PeerGuardComponents

  constructor(components: PeerGuardComponents) {
    this.c = components
  }

  /** Reads one frame of a peer, charged to its budget (past it: BudgetError, the round ends). */
  async frame(lp: ReturnType<typeof lpStream>, peer: PeerId, signal: AbortSignal): Promise<Uint8Array> {
    const bytes = (await lp.read({ signal })).subarray()
    const over = this.c.budgets.charge(peer.toString(), bytes.byteLength)
    if (over !== undefined) this.overBudget(peer, over)
    return bytes
  }

  /** Reads and decodes one control frame (size and nesting checked before parsing). */
  async control<T>(
    lp: ReturnType<typeof lpStream>,
    peer: PeerId,
    signal: AbortSignal,
    schema: Parameters<typeof decodeFrame<T>>[1],
  ): Promise<T> {
    const bytes = await this.frame(lp, peer, signal)
    const cpu = process.threadCpuUsage()
    const r = decodeFrame(bytes, schema)
    this.charge(peer, cpu)
    if (r.ok) return r.value
    this.invalidFrame(peer, r.error)
    throw r.error
  }

  /**
   * Ingests one message frame of a peer and counts it in `res`; `ingested` is told whether ingest
   * threw (a loop error of the caller, the round goes on). A message refused for good is an
   * invalid frame (past the limit: BudgetError, the round ends).
   */
  async message(
    ingest: Ingest,
    res: { received: number; rejected: number },
    bytes: Uint8Array,
    peer: PeerId,
    ingested: (err?: unknown) => void,
  ): Promise<void> {
    let refused: { code: string; message: string } | undefined
    const cpu = process.threadCpuUsage()
    try {
      const pending = ingest.ingest(bytes, 'anti-entropy', peer.toString())
      this.charge(peer, cpu)
      const r = await pending
      if (r.status === 'accepted') res.received++
      else if (r.status === 'rejected') {
        res.rejected++
        if (isInvalid(r.error.code, r.signer, peer)) refused = r.error
      }
      ingested()
    } catch (err) {
      res.rejected++
      ingested(err)
    }
    if (refused !== undefined) this.invalidFrame(peer, refused)
  }

  /** Adds the CPU time since `since` to the peer's budget. */
  charge(peer: PeerId, since: NodeJS.CpuUsage): void {
    const d = process.threadCpuUsage(since)
    this.c.budgets.spent(peer.toString(), (d.user + d.system) / 1000)
  }

  /** A peer over a budget: one warning per interval, and the round ends. */
  private overBudget(peer: PeerId, limit: BudgetLimit): never {
    const key = peer.toString()
    if (this.c.budgets.warnOnce(key))
      this.c.logger.warn(
        { peer: key, limit },
        'anti-entropy peer over its budget: its rounds are refused until the interval ends',
      )
    throw new BudgetError(limit, key)
  }

  /** Counts an invalid frame; too many disconnect the peer and cost it gossip score. */
  invalidFrame(peer: PeerId, error: { code: string; message: string }): void {
    const key = peer.toString()
    if (this.c.budgets.warnOnce(key))
      this.c.logger.warn(
        { peer: key, code: error.code, reason: error.message },
        'invalid anti-entropy frame (more this interval are only counted)',
      )
    if (!this.c.budgets.invalid(key)) return
    this.c.logger.warn({ peer: key }, 'disconnecting an anti-entropy peer that sent too many invalid frames')
    this.c.penalize?.(peer, AE_SCORE_PENALTY)
    void this.c.hangUp(peer).catch(() => {})
    throw new BudgetError('invalid', key)
  }
}

/** Refusals an honest peer can cause (transient, or a quota of a signer that is not the peer) are not invalid frames. */
const NOT_INVALID: ReadonlySet<string> = IGNORED_CODES

export function isInvalid(code: string, signer: string | undefined, peer: PeerId): boolean {
  if (code === 'ERR_QUOTA') return signer === peer.toString()
  return !NOT_INVALID.has(code)
}
