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
import type { OptionSpec } from './option-spec.ts'
import { AGENT_OPTIONS } from './options-agent.ts'
import { LISTEN_OPTION, NETWORK_OPTIONS } from './options-network.ts'
import { FORWARDING_OPTION, SERVING_OPTIONS } from './options-serving.ts'

export type { DefaultsContext, OptionKind, OptionRole, OptionSpec } from './option-spec.ts'

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
  LISTEN_OPTION,
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
  ...NETWORK_OPTIONS,
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
    name: 'api_timeout',
    env: 'LLMESH_API_TIMEOUT',
    kind: 'duration',
    default: () => '15s',
    defaultText: '`15s`',
    help: 'the CLI: how long one API call waits for the daemon to answer (an upload waits as long as it takes); env only',
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
  ...SERVING_OPTIONS,
  ...AGENT_OPTIONS,
  FORWARDING_OPTION,
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
