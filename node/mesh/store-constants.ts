/** Defaults of the message store's file (see docs/protocol.md, "Message store durability"). */

/** At load, the log is compacted only when dead bytes (stale, duplicate, unreadable) exceed this share of it. */
export const COMPACT_DEAD_RATIO = 0.5

/** Free space a compaction leaves besides the new file (it is skipped when this does not fit). */
export const COMPACT_FREE_MARGIN_BYTES = 1024 * 1024

/** Most records one group commit writes at once (one write + one fdatasync). */
export const GROUP_COMMIT_MAX_RECORDS = 1024
