/** Defaults of the message store's file (see docs/protocol.md, "Message store durability"). */

/** At load, the log is compacted only when dead bytes (stale, duplicate, unreadable) exceed this share of it. */
export const COMPACT_DEAD_RATIO = 0.5

/** Free space a compaction leaves besides the new file (it is skipped when this does not fit). */
export const COMPACT_FREE_MARGIN_BYTES = 1024 * 1024

/** Most records one group commit writes at once (one write + one fdatasync). */
export const GROUP_COMMIT_MAX_RECORDS = 1024

/*
 * Retention and quotas (docs/protocol.md, "Message retention"). Sizes are wire bytes (the
 * canonical envelope); the log line of a message is about 2.4× its wire size.
 */

/** Health reports are always kept for at least this long (the anti-entropy health window). */
export const REPORT_HORIZON_MIN_MS = 60 * 60 * 1000
/** Of each device, its newest this many reports are kept whatever their age (within the retention). */
export const REPORTS_KEPT_NEWEST = 2
/** Most health reports one device may have stored at once. */
export const REPORT_QUOTA_COUNT = 2048
/** Most wire bytes of health reports one device may have stored at once. */
export const REPORT_QUOTA_BYTES = 8 * 1024 * 1024
/** Most verdicts one device may have stored at once. */
export const VERDICT_QUOTA_COUNT = 64
/** Most wire bytes of verdicts one device may have stored at once. */
export const VERDICT_QUOTA_BYTES = 4 * 1024 * 1024
/** Of a finished release, this many verdicts per (stage, outcome) are kept: the earliest ones. */
export const FINISHED_VERDICTS_KEPT = 1
/** Ids of messages retention dropped, remembered so anti-entropy does not fetch them again. */
export const FORGOTTEN_IDS_MAX = 200_000
/** Online compaction: only when the dead bytes of the log exceed this (and COMPACT_DEAD_RATIO of it). */
export const COMPACT_MIN_DEAD_BYTES = 4 * 1024 * 1024
