/**
 * VerdictPublisher: signs a decision's `verdictToPublish` with the device key and publishes it
 * (the store feeds it back, so the controller adopts it on a later tick). The same verdict
 * (release, stage, outcome) is not published again within VERDICT_REPUBLISH_MS.
 */
import type { Decision } from '../../protocols/rollout/index.ts'
import type { Verdict } from '../../protocols/schemas/index.ts'
import { signDeviceMessage } from '../../protocols/signing/index.ts'
import type { DaemonContext } from '../daemon.ts'
import { VERDICT_REPUBLISH_MS } from './constants.ts'

/** Publishes this device's verdicts. */
export class VerdictPublisher {
  private readonly ctx: Pick<DaemonContext, 'config' | 'identity' | 'logger' | 'publish'>
  private readonly now: () => number
  private readonly published = new Map<string, number>()
  /** Verdicts published so far. */
  count = 0

  constructor(ctx: Pick<DaemonContext, 'config' | 'identity' | 'logger' | 'publish'>, now: () => number) {
    this.ctx = ctx
    this.now = now
  }

  /** Signs and publishes the decision's verdict for release `key` (never throws). */
  async publish(key: string, d: Decision): Promise<void> {
    const draft = d.verdictToPublish
    if (draft === undefined || draft === null) return
    const id = `${key}/${draft.stage}/${draft.outcome}`
    const now = this.now()
    if (now - (this.published.get(id) ?? 0) < VERDICT_REPUBLISH_MS) return
    this.published.set(id, now)
    const { ctx } = this
    const verdict: Verdict = { type: 'Verdict', v: 1, fleet: ctx.config.fleet, device: ctx.identity.peerId, ...draft }
    try {
      await ctx.publish(await signDeviceMessage(verdict, ctx.identity.privateKey))
      this.count++
      ctx.logger.info(
        { release: key, stage: draft.stage, outcome: draft.outcome, evidence: draft.evidence.length },
        'verdict published',
      )
    } catch (err) {
      ctx.logger.warn({ err: (err as Error).message, release: key }, 'verdict not published')
    }
  }
}
