/** Defaults of the agent update (llmesh updating itself): layout, exit code, health window. */

/** Where agent versions live side by side (`<root>/<version>`, `<root>/current`), like install.sh. */
export const DEFAULT_AGENT_ROOT = '/opt/llmesh'
/** The symlink naming the version to run, relative (`current -> 0.4.0`). */
export const CURRENT_LINK = 'current'
/** The launcher inside a version's directory (the package's `bin/llmesh`). */
export const AGENT_ENTRY = 'bin/llmesh'
/**
 * Exit code of a node that switched `current` and asks its supervisor to start the new version
 * (EX_TEMPFAIL). `llmesh agent run` restarts at once; a systemd unit restarts on it
 * (`RestartForceExitStatus=75`). A daemon the wrapper handed its process over to execs the wrapper
 * instead (handover.ts), and exits with it only if that exec fails.
 */
export const AGENT_RESTART_EXIT_CODE = 75
/** The new version must report ready within this window or the previous one takes over, ms. */
export const AGENT_HEALTH_WINDOW_MS = 120_000
/** The wrapper's record of a switch in progress: `{ version, previous }` (under the root). */
export const AGENT_PENDING_FILE = '.agent-pending.json'
/** The wrapper's record of versions rolled back: `[{ version, reason, at }]` (under the root). */
export const AGENT_FAILURES_FILE = '.agent-failures.json'
/** Most failures kept in that record (the oldest are dropped). */
export const MAX_AGENT_FAILURES = 16
/** The signed manifest a version was installed from, inside its directory. */
export const AGENT_RELEASE_FILE = '.llmesh-agent-release.json'
/** Largest JSON state file read, bytes. */
export const MAX_AGENT_STATE_BYTES = 64 * 1024
/** Longest time tar may take to unpack a package, ms. */
export const UNPACK_TIMEOUT_MS = 300_000
/** How often the wrapper looks for the ready file, ms. */
export const READY_POLL_MS = 200
/** A child that does not exit this long after SIGTERM is killed, ms. */
export const CHILD_KILL_GRACE_MS = 10_000
/** Delay before a crashed (already confirmed) version is started again, ms. */
export const CRASH_RESTART_DELAY_MS = 1_000
/** The updater looks at the newest agent release again this often (an install that failed, a newer one that came while busy), ms. */
export const AGENT_RECONSIDER_MS = 60_000
/** The updater compares the version the rollout admits with the last one it looked at this often (a promotion is taken within it), ms. */
export const AGENT_TARGET_POLL_MS = 1_000
/** The newest failure (its `at`) already counted in a health report's events (under the root). */
export const AGENT_REPORTED_FILE = '.agent-failures-reported.json'
/** Most version directories under the root the fleet rollback looks at (the rest are ignored). */
export const MAX_HELD_VERSIONS = 64
/** Longest time `llmesh agent run` waits for its configuration (read once at start by a short-lived child process), ms. */
export const AGENT_CONFIG_TIMEOUT_MS = 60_000
/** Largest answer of that child, bytes. */
export const AGENT_CONFIG_MAX_BYTES = 64 * 1024
