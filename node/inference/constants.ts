/** Defaults of the inference area (node/inference). Resolved as `init.x ?? X`. */

/** Concurrent generations (llama.cpp sequences) per worker. Tiny devices: keep it low. */
export const DEFAULT_MAX_CONCURRENT = 2
/** Requests allowed to wait for a slot; more → OverloadedError (HTTP 429). */
export const DEFAULT_MAX_QUEUE = 16
/** Longest wait for a slot while a model is serving; then OverloadedError. */
export const DEFAULT_QUEUE_TIMEOUT_MS = 60_000
/** Longest wait while no model is serving (swap, restart); then ModelUnavailableError (HTTP 503). */
export const DEFAULT_UNAVAILABLE_WAIT_MS = 15_000
/** Retry-After hint (seconds) given with ModelUnavailableError/OverloadedError. */
export const DEFAULT_RETRY_AFTER_S = 5

/**
 * Spawn the worker in start(), before any model is wanted. Off: a device with no active model
 * holds no worker (measured: ~100–117 MB RSS of a Node + node-llama-cpp process with nothing to
 * serve, bench/idle.ts); the first load pays the worker's start (~1–2 s) instead.
 */
export const DEFAULT_SPAWN_ON_START = false

/** Worker process start (getLlama inside the child). */
export const DEFAULT_START_TIMEOUT_MS = 60_000
/** Model load + context creation in the worker. */
export const DEFAULT_LOAD_TIMEOUT_MS = 120_000
/** One request, from being sent to the worker to its last token. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000
/** After a cancel, how long the worker gets to acknowledge before it is considered hung and killed. */
export const DEFAULT_CANCEL_GRACE_MS = 5_000
/** In-flight requests get this long to finish before a model swap cancels them. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000
/** Health ping period and reply deadline; a silent worker is killed (kind 'timeout'). */
export const DEFAULT_HEALTH_INTERVAL_MS = 10_000
export const DEFAULT_HEALTH_TIMEOUT_MS = 5_000
/** Graceful worker shutdown before SIGKILL. */
export const DEFAULT_STOP_TIMEOUT_MS = 5_000
/** Restart backoff after an unexpected worker exit: doubles from MIN up to MAX. */
export const DEFAULT_RESTART_BACKOFF_MS = 250
export const DEFAULT_MAX_RESTART_BACKOFF_MS = 30_000

/** Probe: short deterministic generation (greedy, fixed seed) that must succeed after every load. */
export const DEFAULT_PROBE_PROMPT = 'The capital of France is'
export const DEFAULT_PROBE_MAX_TOKENS = 4
export const DEFAULT_PROBE_TIMEOUT_MS = 30_000
export const PROBE_SEED = 42

/** Largest max_tokens a request may ask for. */
export const DEFAULT_MAX_TOKENS_LIMIT = 2048
/** max_tokens when a request gives none (OpenAI's default for /v1/completions is 16). */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16
export const DEFAULT_CHAT_MAX_TOKENS = 256

/**
 * Threads: measured on a 2-core AMD EPYC VM (node-llama-cpp 3.21.1, CPU build): a 64-wide
 * 2-layer F32 model made 2756 tok/s with threads=1 and 78 tok/s with threads=2; a 256-wide
 * 4-layer one 1133 vs 62 tok/s. Thread synchronisation dominates small matrices, so models below
 * this size get one thread; bigger ones get all cores but one (the mesh keeps a core).
 */
export const TINY_MODEL_BYTES = 64 * 1024 * 1024
/** Default context never exceeds this (edge devices), nor the trained context. */
export const MAX_DEFAULT_CONTEXT = 8192
export const MIN_CONTEXT = 256
/** Share of free RAM (after the model's own size) the KV cache may take by default. */
export const KV_CACHE_RAM_FRACTION = 0.5

/** Name prefix of the worker's own memory cgroup (`llmesh-worker-<pid>`, see oom-detector.ts). */
export const OOM_CGROUP_PREFIX = 'llmesh-worker-'
/** The kernel logs an OOM kill just after its SIGKILL: re-read /dev/kmsg this often, this many times. */
export const KMSG_RETRY_MS = 50
export const KMSG_RETRIES = 6

/** A dead worker's cgroup is removed with up to this many tries (the kernel may refuse for a moment). */
export const CGROUP_RMDIR_TRIES = 50
/** Delay between those tries, ms. */
export const CGROUP_RMDIR_RETRY_MS = 100

/** Most inputs in one POST /v1/embeddings (OpenAI allows 2,048; a Pi embeds a few per second). */
export const MAX_EMBEDDING_INPUTS = 256
/** Quality probes: tokens evaluated per step, between which a probe checks for preemption. */
export const SCORE_CHUNK_TOKENS = 32
/** Cap of one token's −ln p in a probe score (p = 0 would be infinite); = QualityFigure's bound. */
export const SCORE_MAX_TOKEN_NLL = 100
/** Longest a quality probe may run on the worker before it is abandoned. */
export const SCORE_TIMEOUT_MS = 60_000

/**
 * oom_score_adj the worker gets right after its spawn (-1000..1000; the daemon keeps its own,
 * -100 under the systemd units' OOMScoreAdjust=): under memory pressure, of the whole machine or
 * of the unit's MemoryMax=, the kernel kills the worker, which the supervisor sees, counts as an
 * OOM and restarts, rather than the daemon. 800 leaves room above for processes meant to die first.
 */
export const WORKER_OOM_SCORE_ADJ = 800
