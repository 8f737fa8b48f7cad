/** Defaults of the health reporter and of fault tracking (faults.ts). */

/** File under the data dir holding the last published report seq (strictly increasing across restarts). */
export const REPORT_SEQ_FILE = 'health-seq.json'
/** File under the data dir holding the salt of opt-in prompt hashes (never leaves the device). */
export const PROMPT_SALT_FILE = 'prompt-salt.key'
/** Most prompt hashes kept per window (the schema allows 64). */
export const MAX_PROMPT_HASHES = 32
/** Share of prompts hashed when prompt hashing is opted in. */
export const PROMPT_HASH_SAMPLE = 0.1
/** Thermal zone directory read for the temperature. */
export const THERMAL_DIR = '/sys/class/thermal'
/** Most model versions per report (schema limit). */
export const MAX_VERSIONS_PER_REPORT = 16
/** Most items a loop's Faults keeps (failing now, and per-code totals): bounds memory and label sets. */
export const MAX_FAULT_ITEMS = 1000
/** Longest error message a fault keeps (status, log). */
export const MAX_FAULT_MESSAGE = 300

// ── Fleet history (fleet-history.ts): fixed memory per series, bounded series count ──
const MIN = 60_000
const HOUR = 60 * MIN
/** A release's fine ring: 1-minute buckets over 6 hours (what a rollout stage's gates look at). */
export const HISTORY_RELEASE_FINE = { stepMs: MIN, slots: 360 } as const
/** A release's coarse ring: 15-minute buckets over 7 days. */
export const HISTORY_RELEASE_COARSE = { stepMs: 15 * MIN, slots: 672 } as const
/** A device's fine ring: 5-minute buckets over 6 hours. */
export const HISTORY_DEVICE_FINE = { stepMs: 5 * MIN, slots: 72 } as const
/** A device's coarse ring: 1-hour buckets over 7 days. */
export const HISTORY_DEVICE_COARSE = { stepMs: HOUR, slots: 168 } as const
/** Devices with a history (the least recently reporting dropped past it): ~8.6 KB each. */
export const HISTORY_MAX_DEVICES = 1000
/** Releases with a history (the least recently reported dropped past it): ~41 KB each + sketches. */
export const HISTORY_MAX_RELEASES = 64
/** Most bins of a bucket's merged latency sketch (the lowest fold into its zero count past it). */
export const HISTORY_SKETCH_MAX_BINS = 256
/**
 * How often the history is saved to `history.json` (and at stop). Reports after the last save are
 * folded in again from the message store at start, so a crash loses nothing the store kept; a
 * longer interval spares the SD card (a 1,000-device history is ~11 MB a save).
 */
export const HISTORY_PERSIST_INTERVAL_MS = 15 * MIN
/** File under the data dir holding the history. */
export const HISTORY_FILE = 'history.json'
/** Largest history file loaded at start (a bigger one is set aside, not parsed). */
export const HISTORY_MAX_FILE_BYTES = 64 * 1024 * 1024
