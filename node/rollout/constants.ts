/** Defaults of the device-side rollout controller. */

/** Re-decide every release at this interval even without new messages. */
export const DECIDE_INTERVAL_MS = 1_000
/** New messages arriving within this time are handled by one tick. */
export const TICK_COALESCE_MS = 50
/** File under the data dir holding every release's rollout facts and the bad-release lists. */
export const ROLLOUT_STATE_FILE = 'rollout-state.json'
/** The same verdict (release, stage, outcome) is not re-published within this time. */
export const VERDICT_REPUBLISH_MS = 5_000
/** Anti-entropy rounds asked for missing evidence at most this often. */
export const EVIDENCE_SYNC_MS = 2_000
/** Before activating a release, catch up with peers through anti-entropy for at most this long. */
export const CATCH_UP_TIMEOUT_MS = 3_000
/** Catch-up and evidence rounds go to this many random connected peers. */
export const CATCH_UP_PEERS = 2
/** After start, wait this long for a first anti-entropy round before activating anything alone. */
export const STARTUP_CATCH_UP_MS = 10_000
/** Local rollback trigger: more than this many restarts of a new version … */
export const LOCAL_MAX_RESTARTS = 3
/** … within this time (the seed article: more than 3 restarts in 5 minutes). */
export const LOCAL_RESTART_WINDOW_MS = 5 * 60_000
/** A version counts as "new" (local triggers apply) for this long after its activation. */
export const LOCAL_PROBATION_MS = 60 * 60_000
