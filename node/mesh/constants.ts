/** Defaults of the mesh's verification and ingest (see docs/protocol.md, "Ingest"). */

/** Pending rotations signed by a key of the current root kept at once (only key holders make them). */
export const ROTATION_MAX_AUTHORIZED_POOLS = 8
/** Pending rotations signed only by the candidate root's own keys kept at once, all peers together. */
export const ROTATION_MAX_UNAUTHORIZED_POOLS = 16
/** Pending rotations signed only by the candidate's own keys that one peer may open. */
export const ROTATION_MAX_POOLS_PER_PEER = 2
