/** Membership constants (every node must use the same: they decide who is enrolled). */

/**
 * Claims one invite may have held per node beyond its `uses`: a claim that ranks after that many
 * held claims of its invite can never win and is refused (a leaked invite cannot grow the store
 * without bound). The winners are the first `uses` claims, so every node still picks the same.
 */
export const INVITE_CLAIM_SLACK = 8
/** Default lifetime of an invite. */
export const DEFAULT_INVITE_TTL_MS = 24 * 60 * 60 * 1000
/** The longest lifetime an invite may have. */
export const MAX_INVITE_TTL_MS = 90 * 24 * 60 * 60 * 1000
/** The `type` of an invite file. */
export const INVITE_FILE_TYPE = 'llmesh-invite'
