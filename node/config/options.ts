/**
 * The ONE list of llmesh's configuration options. Every option has a command-line flag, an
 * `LLMESH_*` environment variable, a key of the configuration file (`/etc/llmesh/llmesh.yaml` on an
 * installed device), a default and one line of help. `--help` of `llmesh node start` / `seed start`,
 * `docs/config.md` (and the README's link to it) and `llmesh config print` are generated from this
 * table; the daemon reads no environment variable anywhere else (node/config/resolve.ts applies it:
 * flag > env > file > default).
 *
 * Defaults suit both an installed device (the code under `/opt/llmesh/`: `/etc/llmesh`,
 * `/var/lib/llmesh`) and a checkout (relative to the current directory).
 */

import { hostname } from 'node:os'
import { AGENT_OPTIONS } from './options-agent.ts'

/** Value kinds: how a flag, a variable or a file value is parsed. */
export type OptionKind = 'string' | 'path' | 'list' | 'bool' | 'int' | 'duration'

/** Which command reads the option. */
export type OptionRole = 'node' | 'seed'

/** Where the defaults are computed for. */
export interface DefaultsContext {
  role: OptionRole
  /** Running from an installed package (`/opt/llmesh/…`), not a checkout. */
  installed: boolean
}

/** One option. */
export interface OptionSpec {
  /** Its name: also the key in the file and `config print`. */
  readonly name: string
  /** Commander flag spelling (`--no-…` for a boolean on by default); absent: env and file only. */
  readonly flag?: string
  readonly env: string
  /** Key in the configuration file; absent: not settable from the file (secrets, the file itself). */
  readonly key?: string
  readonly kind: OptionKind
  /** The default, by role and layout; absent: none (the daemon decides, or the feature is off). */
  readonly default?: (c: DefaultsContext) => string | number | boolean
  /** The default as the docs state it. */
  readonly defaultText: string
  readonly help: string
  /** A secret: `config print` shows whether it is set, never its value. */
  readonly secret?: boolean
  /** Smallest accepted value of an `int`. */
  readonly min?: number
  /** A `list` flag given once per value (`--listen a --listen b`); other lists are comma-separated. */
  readonly repeatable?: boolean
}

/** Where the configuration file is on an installed device. */
export const INSTALLED_CONFIG_FILE = '/etc/llmesh/llmesh.yaml'
/** Where it is in a checkout (the current directory). */
export const CHECKOUT_CONFIG_FILE = 'llmesh.yaml'
/** Largest configuration file read, bytes. */
export const MAX_CONFIG_BYTES = 64 * 1024

/** Every option, in the order `--help`, the docs and `config print` show them. */
export const OPTIONS: readonly OptionSpec[] = [
  {
    name: 'config',
    flag: '--config <file>',
    env: 'LLMESH_CONFIG',
    kind: 'path',
    default: (c) => (c.installed ? INSTALLED_CONFIG_FILE : CHECKOUT_CONFIG_FILE),
    defaultText: `\`${INSTALLED_CONFIG_FILE}\` installed, \`./${CHECKOUT_CONFIG_FILE}\` in a checkout (skipped when absent)`,
    help: 'configuration file (YAML, keys as in this table)',
  },
  {
    name: 'fleet',
    flag: '--fleet <dir>',
    env: 'LLMESH_FLEET',
    key: 'fleet',
    kind: 'path',
    default: (c) => (c.installed ? '/etc/llmesh' : 'fleet'),
    defaultText: '`/etc/llmesh` installed, `./fleet` in a checkout',
    help: 'fleet directory (trust root and join secret; the seed also needs operator.key)',
  },
  {
    name: 'data',
    flag: '--data <dir>',
    env: 'LLMESH_DATA',
    key: 'data',
    kind: 'path',
    default: (c) => (c.installed ? (c.role === 'seed' ? '/var/lib/llmesh-seed' : '/var/lib/llmesh') : `${c.role}-data`),
    defaultText:
      '`/var/lib/llmesh` (seed `/var/lib/llmesh-seed`) installed, `./node-data` (`./seed-data`) in a checkout',
    help: 'data directory (identity, messages, models)',
  },
  {
    name: 'api',
    flag: '--api <host:port>',
    env: 'LLMESH_API',
    key: 'api',
    kind: 'string',
    default: () => '127.0.0.1:7420',
    defaultText: '`127.0.0.1:7420`',
    help: 'local HTTP API address',
  },
  {
    name: 'listen',
    flag: '--listen <multiaddr>',
    env: 'LLMESH_LISTEN',
    key: 'listen',
    kind: 'list',
    repeatable: true,
    defaultText: '`/ip4/0.0.0.0/tcp/0`',
    help: 'libp2p listen address (flag repeatable; env comma-separated; file a list)',
  },
  {
    name: 'tags',
    flag: '--tags <a,b>',
    env: 'LLMESH_TAGS',
    key: 'tags',
    kind: 'list',
    defaultText: 'none',
    help: 'device tags, comma-separated',
  },
  {
    name: 'site',
    flag: '--site <name>',
    env: 'LLMESH_SITE',
    key: 'site',
    kind: 'string',
    defaultText: 'none',
    help: 'the site this node is at (a-z, 0-9, . _ -): declared as the tag site:<name>, shown in device list and fleet reports',
  },
  {
    name: 'mdns',
    flag: '--no-mdns',
    env: 'LLMESH_MDNS',
    key: 'mdns',
    kind: 'bool',
    default: () => true,
    defaultText: '`true`',
    help: 'mDNS discovery and the bonjour advertisement',
  },
  {
    name: 'bootstrap',
    flag: '--bootstrap <multiaddr>',
    env: 'LLMESH_BOOTSTRAP',
    key: 'bootstrap',
    kind: 'list',
    repeatable: true,
    defaultText: 'none',
    help: 'peer to dial (flag repeatable; env comma-separated; file a list)',
  },
  {
    name: 'ws_port',
    flag: '--ws-port <port>',
    env: 'LLMESH_WS_PORT',
    key: 'ws_port',
    kind: 'int',
    min: 0,
    defaultText: 'none (no WebSocket listener)',
    help: 'also listen for libp2p over WebSockets on this TCP port (/ip4/0.0.0.0/tcp/<port>/ws), for sites behind HTTP-only firewalls; 0: any free port',
  },
  {
    name: 'relay_server',
    flag: '--relay-server',
    env: 'LLMESH_RELAY_SERVER',
    key: 'relay_server',
    kind: 'bool',
    default: () => false,
    defaultText: '`false`',
    help: 'relay (circuit relay v2) for fleet nodes behind NAT that listen on /p2p-circuit; bounded: 32 reservations, 64 circuits, 1 GiB and 1 h per relayed connection',
  },
  {
    name: 'wan_rate',
    flag: '--wan-rate <rate>',
    env: 'LLMESH_WAN_RATE',
    key: 'wan_rate',
    kind: 'string',
    defaultText: 'none (no cap)',
    help: 'cap on model bytes this node sends and receives over WAN links (peers off its subnets, or relayed), each way: 5Mbit, 500kbit, 2MB or bytes/s',
  },
  {
    name: 'report_interval',
    flag: '--report-interval <duration>',
    env: 'LLMESH_REPORT_INTERVAL',
    key: 'report_interval',
    kind: 'duration',
    default: () => '60s',
    defaultText: '`60s`',
    help: 'health report interval (e.g. 60s, 1h30m)',
  },
  {
    name: 'operator_key',
    flag: '--operator-key <file>',
    env: 'LLMESH_OPERATOR_KEY',
    key: 'operator_key',
    kind: 'path',
    defaultText: 'none',
    help: 'operator private key (PEM): this node signs rollout commands',
  },
  {
    name: 'invite',
    flag: '--invite <file>',
    env: 'LLMESH_INVITE',
    key: 'invite',
    kind: 'path',
    defaultText: 'none',
    help: 'an invite file (llmesh device invite): a device not yet enrolled claims it at start and joins with its tags',
  },
  {
    name: 'api_token_file',
    flag: '--api-token-file <file>',
    env: 'LLMESH_API_TOKEN_FILE',
    key: 'api_token_file',
    kind: 'path',
    defaultText: 'none',
    help: 'file holding the bearer token non-loopback API callers must send',
  },
  {
    name: 'api_token',
    env: 'LLMESH_API_TOKEN',
    kind: 'string',
    secret: true,
    defaultText: 'none',
    help: 'the API bearer token itself (16+ characters; the CLI sends it too); env only',
  },
  {
    name: 'api_insecure',
    flag: '--api-insecure',
    env: 'LLMESH_API_INSECURE',
    key: 'api_insecure',
    kind: 'bool',
    default: () => false,
    defaultText: '`false`',
    help: 'allow a non-loopback --api address without a token (anyone on the network can use it)',
  },
  {
    name: 'log_level',
    flag: '--log-level <level>',
    env: 'LLMESH_LOG_LEVEL',
    key: 'log_level',
    kind: 'string',
    default: () => 'info',
    defaultText: '`info`',
    help: 'log level: fatal, error, warn, info, debug, trace, silent',
  },
  {
    name: 'log_format',
    flag: '--log-format <format>',
    env: 'LLMESH_LOG_FORMAT',
    key: 'log_format',
    kind: 'string',
    defaultText: '`pretty` when stderr is a terminal, else `json`',
    help: 'log format: pretty (one readable line per entry, for a person at a terminal) or json (one JSON object per line, for journald and log collectors)',
  },
  {
    name: 'device_type',
    flag: '--device-type <type>',
    env: 'LLMESH_DEVICE_TYPE',
    key: 'device_type',
    kind: 'string',
    default: () => 'generic',
    defaultText: '`generic`',
    help: 'device type this node declares (e.g. rpi5-8gb), shown with its capabilities',
  },
  {
    name: 'name',
    flag: '--name <name>',
    env: 'LLMESH_NAME',
    key: 'name',
    kind: 'string',
    default: () => hostname().slice(0, 64) || 'llmesh',
    defaultText: 'the host name',
    help: "a name for people, shown next to the peer id (an invite's name wins); 1-64 characters",
  },
  {
    name: 'inference_concurrency',
    flag: '--inference-concurrency <n>',
    env: 'LLMESH_INFERENCE_CONCURRENCY',
    key: 'inference_concurrency',
    kind: 'int',
    min: 1,
    default: () => 2,
    defaultText: '`2`',
    help: 'inference requests served at once (llama.cpp sequences)',
  },
  {
    name: 'inference_queue',
    flag: '--inference-queue <n>',
    env: 'LLMESH_INFERENCE_QUEUE',
    key: 'inference_queue',
    kind: 'int',
    min: 0,
    default: () => 16,
    defaultText: '`16`',
    help: 'inference requests waiting beyond those served (more: 503 with Retry-After)',
  },
  {
    name: 'inference_threads',
    flag: '--inference-threads <n>',
    env: 'LLMESH_INFERENCE_THREADS',
    key: 'inference_threads',
    kind: 'int',
    min: 1,
    defaultText: 'per model: 1 for tiny models, else all cores but one',
    help: 'llama.cpp threads',
  },
  {
    name: 'keep_versions',
    flag: '--keep-versions <n>',
    env: 'LLMESH_KEEP_VERSIONS',
    key: 'keep_versions',
    kind: 'int',
    min: 2,
    default: () => 3,
    defaultText: '`3`',
    help: 'versions of each model kept on disk (active and previous always kept)',
  },
  ...AGENT_OPTIONS,
  {
    name: 'forwarding',
    flag: '--no-forwarding',
    env: 'LLMESH_FORWARDING',
    key: 'forwarding',
    kind: 'bool',
    default: () => true,
    defaultText: '`true`',
    help: 'serve OpenAI requests for models this device cannot serve through a peer that can, and serve peers’ forwarded requests',
  },
]

/** The option named `name` (a typo in code is a bug, caught by the tests). */
export function optionSpec(name: string): OptionSpec {
  const o = OPTIONS.find((x) => x.name === name)
  if (o === undefined) throw new Error(`no option ${name}`)
  return o
}

/** Whether this code runs from an installed package (`/opt/llmesh/<version>/…`). */
export function runsInstalled(dir = import.meta.dirname): boolean {
  return dir.startsWith('/opt/llmesh/')
}

/**
 * The raw value of an option's `LLMESH_*` variable, for the few readers outside a resolved
 * configuration (the logger's default level, the CLI's API token); empty counts as unset.
 */
export function envValue(
  name: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  const v = env[optionSpec(name).env]
  return v === undefined || v === '' ? undefined : v
}
