/**
 * A device presents its invite (`llmesh node start … --invite <file>`): it signs a claim of the
 * invite for its own peer id and publishes it (stored here, gossiped, and carried by anti-entropy
 * to peers met later). Every node then decides from the claims it holds whether this device won
 * one of the invite's uses (protocols/membership): no seed is needed.
 *
 * At start: a device already enrolled, or whose claim of this invite is already held, does
 * nothing (a restart with the same `--invite` is harmless, also after the invite expired).
 * Otherwise the invite must be valid now: an expired invite, one of another fleet or one no
 * operator key signed refuses the start with its typed error.
 */
import { openInviteFile, signClaim } from '../../protocols/membership/invite.ts'
import type { DaemonContext } from '../daemon-context.ts'

/** What presenting an invite did. */
export type InviteOutcome = 'claimed' | 'already-claimed' | 'already-enrolled'

/** Claims the invite in `text` for this device unless it is enrolled or claimed it before. Throws typed errors. */
export async function presentInvite(
  ctx: Pick<DaemonContext, 'identity' | 'store' | 'publish' | 'trust' | 'config' | 'logger'>,
  text: string,
  now: number,
): Promise<InviteOutcome> {
  const self = ctx.identity.peerId
  const own = ctx.store.membershipOf(self, now)
  if (own.membership === 'enrolled') {
    ctx.logger.info({ via: own.via }, 'this device is enrolled: the invite is not needed')
    return 'already-enrolled'
  }
  const opened = openInviteFile(text, ctx.trust(), now)
  if (ctx.store.claimsOf(opened.invite.id).some((c) => c.claim.device === self)) {
    ctx.logger.info({ invite: opened.invite.id }, 'this device has claimed the invite: waiting for the fleet')
    return 'already-claimed'
  }
  const wire = await signClaim(opened, ctx.identity.privateKey, ctx.config.hello.capabilities, now)
  const res = await ctx.publish(wire)
  if (res.status === 'rejected') throw res.error
  ctx.logger.info(
    { invite: opened.invite.id, tags: opened.invite.tags, name: opened.invite.name },
    'invite claimed: enrolled once every node holds the claim (unless another device won it)',
  )
  return 'claimed'
}
