/**
 * What a revoked device does about its own revocation: it keeps running (its operator may still
 * need to reach it), but says loudly, once at start and once when the revocation arrives, that
 * the fleet no longer counts it. From then on its own verifier refuses its health reports and
 * verdicts (`ERR_REVOKED`) before they leave, every other node refuses them too, and its rollout
 * controller, no longer enrolled, publishes no verdicts and finds the device in no cohort.
 */
import type { Revocation } from '../../protocols/schemas/index.ts'
import type { Logger } from '../logger.ts'
import type { MessageStore } from './message-store.ts'
import type { StoredMessage } from './types.ts'

/** The error logged by a revoked device (stable, for operators' log searches). */
export const REVOKED_LOG =
  'this device is revoked by the fleet operator: its health reports and verdicts no longer count'

/** Logs when `self` is (or becomes) revoked. Returns the function that stops watching. */
export function watchOwnRevocation(store: MessageStore, self: string, log: Logger): () => void {
  let told = false
  const tell = (r: Revocation) => {
    if (told) return
    told = true
    log.error(
      { reason: r.reason, revoked_at: r.issued_at, hint: 'a new identity (fresh data dir) must be enrolled anew' },
      REVOKED_LOG,
    )
  }
  const own = store.revocationOf(self)
  if (own !== undefined) tell(own)
  const onRevocation = (m: StoredMessage<Revocation>) => {
    if (m.message.device === self) tell(m.message)
  }
  store.on('revocation', onRevocation)
  return () => store.off('revocation', onRevocation)
}
