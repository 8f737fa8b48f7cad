/**
 * The one boundary where the CLI's `--json` output takes its shape (used by `print`, cli/output.ts):
 * every key becomes snake_case, as in the wire protocol, whatever the daemon's HTTP JSON or the
 * command's own object uses (`stageName` → `stage_name`, `bytesIn` → `bytes_in`), and the document
 * is always an object envelope (`{ "<noun>": … }`), never a bare array. Errors already have
 * their own envelope, `{ "error": { code, message, class } }`.
 *
 * How field names are told from data: a key is a field name unless it sits in an object listed in
 * `DATA_MAPS`, objects whose keys are data (peer ids, model names, stage names, error codes, file
 * names, `model@version`): those keys are kept byte for byte, their values are shaped like the
 * rest. Only keys that look like camelCase identifiers (`^[a-z][a-z0-9]*([A-Z][a-z0-9]*)+$`) are
 * rewritten, so a data key that was missed in the list is never mangled (a peer id starts with a
 * digit or a capital); test/mesh/rollout-cli.test.ts walks every `--json` command against real
 * daemons and fails on any key that is neither snake_case nor inside a data map.
 */

/**
 * Fields whose value is an object keyed by data, not by field names (the values are still shaped):
 * a bare name matches that field anywhere, `parent.field` only under that parent (for names such
 * as `peers` or `errors` that are lists or records elsewhere). Add one when a command prints a new
 * map keyed by names, ids or codes: the walk in test/mesh/rollout-cli.test.ts names it.
 */
export const DATA_MAPS: ReadonlySet<string> = new Set([
  'models', // status: per model name
  'cohorts', // rollout status: per stage name
  'scores', // status mesh: gossipsub score per peer id
  'write_errors', // status store: per errno code
  'quota_refused', // status store: per message type
  'refused', // status swarm_key: per error code
  'drops', // status gossip budget: per limit
  'over_budget', // status gossip budget: per limit
  'metadata', // model inspect: per GGUF key (`general.architecture`)
  'by_type', // fleet report: per message type
  'loops.errors', // status loops: per loop name
  'replication.peers', // status replication: per peer id
  'retention.dropped', // status store retention: per reason
])

const CAMEL = /^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$/

/** `stageName` → `stage_name`; any other key unchanged. */
export function snakeKey(key: string): string {
  return CAMEL.test(key) ? key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : key
}

/** Whether the object at field `key` (under field `parent`) is keyed by data (DATA_MAPS). */
export function isDataMap(key: string, parent: string | undefined): boolean {
  return DATA_MAPS.has(key) || (parent !== undefined && DATA_MAPS.has(`${parent}.${key}`))
}

/**
 * The value with snake_case field names at every depth; the keys of a data map are kept.
 * `at` is the field this value sits in and `parent` the field above it (to match DATA_MAPS).
 */
export function snakeKeys(value: unknown, at?: string, parent?: string): unknown {
  if (Array.isArray(value)) return value.map((v) => snakeKeys(v))
  if (value === null || typeof value !== 'object') return value
  // objects with their own JSON form (Date, Buffer…), as JSON.stringify would print them
  const json = (value as { toJSON?: () => unknown }).toJSON
  if (typeof json === 'function') return snakeKeys(json.call(value), at, parent)
  const data = at !== undefined && isDataMap(at, parent)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined || typeof v === 'function') continue
    const key = data ? k : snakeKey(k)
    // a data map's values are records again: their fields are shaped, matched from the map's name
    out[key] = data ? snakeKeys(v, undefined, at) : snakeKeys(v, key, at)
  }
  return out
}

/** A `--json` document: an object with snake_case keys. A bare array is a bug of the command. */
export function jsonDocument(data: unknown): Record<string, unknown> {
  if (data === null || typeof data !== 'object' || Array.isArray(data))
    throw new TypeError('a --json document is an object envelope ({ "<noun>": … }), not a bare value or array')
  return snakeKeys(data) as Record<string, unknown>
}
