/**
 * Who is a member of the fleet, decided from signed messages alone, the same on every node. Pure:
 * no clock (`now` is passed in), no I/O.
 *
 * How it works:
 * - A device is `revoked` once the operator revoked it (final).
 * - Else it is `enrolled` when it holds an operator enrollment that has not expired (the newest by
 *   `issued_at`), or when it won a claim of an invite (then with the invite's tags and name).
 * - Else it is `pending`: it holds the join secret but nobody enrolled it. The tags it declares are
 *   shown, never used.
 * - Claims of one invite (same invite id) are ranked by (`claimed_at`, claim id); walking that
 *   order, each new device takes one use until the invite's `uses` are taken. The winners depend
 *   only on the set of claims held, not on the order they arrived in: two devices racing for a
 *   single-use invite on two sides of a partition end up with the same one enrolled everywhere once
 *   the claims meet. A revoked winner keeps its use (a stolen device frees no slot).
 */
import { SCHEMA_VERSION } from '../constants.ts'
import type { DeviceEnrollment, DeviceInvite, InviteClaim, Revocation } from '../schemas/index.ts'
import { INVITE_CLAIM_SLACK } from './constants.ts'

/** A stored claim with the invite it carries (decoded once: see `inviteOfClaim`). */
export interface ClaimFacts {
  /** The claim's message id. */
  digest: string
  claim: InviteClaim
  invite: DeviceInvite
}

/** A device's membership. */
export type Membership = 'enrolled' | 'pending' | 'revoked'

/** The signed facts membership is decided from. */
export interface MembershipInput {
  enrollments: readonly DeviceEnrollment[]
  revocations: readonly Revocation[]
  claims: readonly ClaimFacts[]
  now: number
}

/** The order claims of one invite are ranked in: earlier first, then the lower claim id. */
export function compareClaims(a: ClaimFacts, b: ClaimFacts): number {
  return a.claim.claimed_at - b.claim.claimed_at || (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0)
}

/** The winning claim of each device that won one (its best-ranked winning claim). */
export function claimWinners(claims: readonly ClaimFacts[]): Map<string, ClaimFacts> {
  const byInvite = new Map<string, ClaimFacts[]>()
  for (const c of claims) {
    const list = byInvite.get(c.invite.id)
    if (list === undefined) byInvite.set(c.invite.id, [c])
    else list.push(c)
  }
  const out = new Map<string, ClaimFacts>()
  for (const list of byInvite.values()) {
    list.sort(compareClaims)
    // one invite id, one operator: should two payloads share it, the fewer uses count
    const uses = Math.min(...list.map((c) => c.invite.uses))
    const taken = new Set<string>()
    for (const c of list) {
      if (taken.has(c.claim.device)) continue
      if (taken.size >= uses) break
      taken.add(c.claim.device)
      const had = out.get(c.claim.device)
      if (had === undefined || compareClaims(c, had) < 0) out.set(c.claim.device, c)
    }
  }
  return out
}

/** The enrollment a winning claim stands for (the invite's tags and name, the device's capabilities). */
export function claimEnrollment(c: ClaimFacts): DeviceEnrollment {
  return {
    type: 'DeviceEnrollment',
    v: SCHEMA_VERSION,
    fleet: c.claim.fleet,
    device: c.claim.device,
    tags: [...c.invite.tags],
    ...(c.invite.name === undefined ? {} : { name: c.invite.name }),
    capabilities: c.claim.capabilities,
    issued_at: c.claim.claimed_at,
  }
}

/** Each device's newest operator enrollment (ties: the lower tag list, as `activeDevices`). */
function newestOperator(enrollments: readonly DeviceEnrollment[]): Map<string, DeviceEnrollment> {
  const latest = new Map<string, DeviceEnrollment>()
  for (const e of enrollments) {
    const had = latest.get(e.device)
    if (!had || e.issued_at > had.issued_at || (e.issued_at === had.issued_at && e.tags.join() < had.tags.join()))
      latest.set(e.device, e)
  }
  return latest
}

/**
 * The one enrollment in force per device, sorted by device: the newest operator enrollment when it
 * has not expired, else the device's winning claim. Revoked devices are left out.
 */
export function enrollmentsInForce(input: MembershipInput): DeviceEnrollment[] {
  const revoked = new Set(input.revocations.map((r) => r.device))
  const out = new Map<string, DeviceEnrollment>()
  for (const [device, e] of newestOperator(input.enrollments)) {
    if (e.expires_at === undefined || e.expires_at > input.now) out.set(device, e)
  }
  for (const [device, c] of claimWinners(input.claims)) if (!out.has(device)) out.set(device, claimEnrollment(c))
  return [...out.values()].filter((e) => !revoked.has(e.device)).sort((a, b) => (a.device < b.device ? -1 : 1))
}

/** One device's membership and the enrollment in force, if any. */
export function membershipOf(
  device: string,
  input: MembershipInput,
): { membership: Membership; enrollment?: DeviceEnrollment; via?: 'operator' | 'invite' } {
  if (input.revocations.some((r) => r.device === device)) return { membership: 'revoked' }
  const own = (x: { device: string }) => x.device === device
  const op = newestOperator(input.enrollments.filter(own)).get(device)
  if (op !== undefined && (op.expires_at === undefined || op.expires_at > input.now))
    return { membership: 'enrolled', enrollment: op, via: 'operator' }
  const won = claimWinners(input.claims).get(device)
  if (won !== undefined) return { membership: 'enrolled', enrollment: claimEnrollment(won), via: 'invite' }
  return { membership: 'pending' }
}

/**
 * Whether a node holding `held` (claims of the candidate's invite) should store `candidate`: not
 * when `uses + INVITE_CLAIM_SLACK` claims already held all rank before it (it could never win).
 */
export function claimAdmissible(held: readonly ClaimFacts[], candidate: ClaimFacts): boolean {
  const uses = Math.min(candidate.invite.uses, ...held.map((c) => c.invite.uses))
  const limit = uses + INVITE_CLAIM_SLACK
  if (held.length < limit) return true
  return held.filter((c) => compareClaims(c, candidate) < 0).length < limit
}
