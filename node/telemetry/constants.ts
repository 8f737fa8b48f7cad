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
