/**
 * Resolves the effective configuration from the table of node/config/options.ts.
 *
 * How it works: for each option the value is taken from the first source that sets it —
 * command-line flag > `LLMESH_*` variable > configuration file > default — parsed by the option's
 * kind, and recorded with its source (`config print` shows both). The file's location is itself
 * an option (`--config`, `LLMESH_CONFIG`); the default file is skipped when absent, a named one
 * must exist. The file is hostile until parsed: at most MAX_CONFIG_BYTES, a YAML mapping of known
 * keys, each value of its option's kind; every refusal is a ConfigError naming `file:line`.
 * Relative paths are taken from the file's directory (file values) or the current directory.
 */
import { open } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { isMap, isScalar, LineCounter, parseDocument, visit } from 'yaml'
import { parseDuration } from '../../protocols/duration.ts'
import { SiteName } from '../../protocols/fleet-report.ts'
import { parseRate } from '../mesh/wan-rate.ts'
import { ConfigError } from './errors.ts'
import { type DefaultsContext, MAX_CONFIG_BYTES, OPTIONS, type OptionSpec } from './options.ts'

/** Where an effective value came from. */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag'

/** The effective value of every option (names as in OPTIONS). */
export interface ConfigValues {
  config: string
  fleet: string
  data: string
  api: string
  listen?: string[]
  tags?: string[]
  site?: string
  mdns: boolean
  bootstrap?: string[]
  ws_port?: number
  relay_server: boolean
  /** As given (`5Mbit`); node/mesh/wan-rate.ts `parseRate` turns it into bytes/s. */
  wan_rate?: string
  /** ms */
  report_interval: number
  operator_key?: string
  invite?: string
  api_token_file?: string
  api_token?: string
  api_insecure: boolean
  log_level: string
  /** `pretty` or `json`; absent: pretty on a terminal (node/logger.ts). */
  log_format?: string
  device_type: string
  name: string
  inference_concurrency: number
  inference_queue: number
  inference_threads?: number
  keep_versions: number
  agent_update: boolean
  agent_root: string
  /** ms */
  agent_health_window: number
  /** `agent run` execs the daemon when no version is on probation (the device unit sets it). */
  agent_handover: boolean
  agent_version?: string
  agent_ready_file?: string
  forwarding: boolean
}

/** A value as parsed from one source. */
type Value = string | number | boolean | string[]

/** The resolved configuration. */
export interface ResolvedConfig {
  values: ConfigValues
  sources: Record<keyof ConfigValues, ConfigSource>
  /** The file read, or null when none was (the default one is absent). */
  file: string | null
}

/** What the resolver reads. */
export interface ConfigInput extends DefaultsContext {
  /** Flags given on the command line, by option name (a repeatable list as an array). */
  flags: Readonly<Record<string, string | boolean | string[] | undefined>>
  env: Readonly<Record<string, string | undefined>>
  cwd: string
}

/** Most keys in a file, longest string value and longest list. */
const MAX_KEYS = 100
const MAX_STRING = 4096
const MAX_LIST = 64
/** Longest device name (the enrollment's limit). */
const MAX_NAME = 64
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const FORMATS = ['pretty', 'json']

/** Parses one raw value of `spec` (from a flag, a variable or the file); `where` names it in errors. */
export function parseValue(spec: OptionSpec, raw: unknown, where: string, baseDir: string): Value {
  const bad = (what: string): never => {
    throw new ConfigError(where, `${spec.name} ${what}`)
  }
  const str = (v: unknown): string => {
    if (typeof v === 'number' && spec.kind !== 'bool') return String(v)
    if (typeof v !== 'string') return bad(`must be a ${spec.kind}, got ${JSON.stringify(v)?.slice(0, 40)}`)
    if (v.length > MAX_STRING) return bad(`is longer than ${MAX_STRING} characters`)
    return v.trim()
  }
  switch (spec.kind) {
    case 'bool': {
      if (typeof raw === 'boolean') return raw
      const s = str(raw).toLowerCase()
      if (['1', 'true', 'yes', 'on'].includes(s)) return true
      if (['0', 'false', 'no', 'off'].includes(s)) return false
      return bad(`must be true or false, got ${JSON.stringify(s.slice(0, 40))}`)
    }
    case 'int': {
      const s = str(raw)
      if (!/^\d{1,9}$/.test(s)) return bad(`must be a whole number, got ${JSON.stringify(s.slice(0, 40))}`)
      const n = Number(s)
      if (spec.name === 'ws_port' && n > 65535) return bad(`must be a TCP port (0-65535), got ${n}`)
      if (spec.min !== undefined && n < spec.min) return bad(`must be at least ${spec.min}, got ${n}`)
      return n
    }
    case 'duration': {
      const s = str(raw)
      try {
        return parseDuration(s)
      } catch {
        return bad(`must be a duration such as 30s, 5m or 1h30m, got ${JSON.stringify(s.slice(0, 40))}`)
      }
    }
    case 'list': {
      const items = Array.isArray(raw) ? raw.map(str) : str(raw).split(',')
      const list = items.map((x) => x.trim()).filter((x) => x !== '')
      if (list.length > MAX_LIST) return bad(`has more than ${MAX_LIST} items`)
      return list
    }
    case 'path':
      return resolve(baseDir, str(raw))
    default: {
      const s = str(raw)
      if (spec.name === 'log_level' && !LEVELS.includes(s)) return bad(`must be one of ${LEVELS.join(', ')}`)
      if (spec.name === 'log_format' && !FORMATS.includes(s)) return bad(`must be one of ${FORMATS.join(', ')}`)
      if (spec.name === 'name' && (s === '' || s.length > MAX_NAME)) return bad(`must be 1 to ${MAX_NAME} characters`)
      if (spec.name === 'site' && !SiteName.safeParse(s).success)
        return bad(
          `must be a site name (a-z, 0-9, . _ -, at most 58 characters), got ${JSON.stringify(s.slice(0, 40))}`,
        )
      if (spec.name === 'wan_rate') {
        try {
          parseRate(s)
        } catch (err) {
          return bad(`must be ${(err as Error).message.replace(/^expected /, '')}`)
        }
      }
      return s
    }
  }
}

/** Reads at most MAX_CONFIG_BYTES of `file`; `undefined` when it does not exist and `optional`. */
async function readBounded(file: string, optional: boolean): Promise<string | undefined> {
  let fh: Awaited<ReturnType<typeof open>>
  try {
    fh = await open(file, 'r')
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new ConfigError(file, `cannot read the configuration file (${(err as Error).message})`)
  }
  try {
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1)
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
    if (bytesRead > MAX_CONFIG_BYTES) throw new ConfigError(file, `larger than ${MAX_CONFIG_BYTES} bytes`)
    return buf.subarray(0, bytesRead).toString('utf8')
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(file, `cannot read the configuration file (${(err as Error).message})`)
  } finally {
    await fh.close()
  }
}

/** Parses a configuration file's text: option name → value, each checked, errors at `file:line`. */
export function parseConfigFile(text: string, file: string): Map<string, Value> {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true })
  const at = (offset: number | undefined): string => `${file}:${offset === undefined ? 1 : lines.linePos(offset).line}`
  if (doc.errors.length > 0) {
    const e = doc.errors[0]
    throw new ConfigError(at(e.pos[0]), `not valid YAML: ${e.message.split('\n')[0]}`)
  }
  // no anchors or aliases: a configuration has no use for them, and they are how YAML bombs grow
  visit(doc, {
    Alias(_key, node) {
      throw new ConfigError(at(node.range?.[0]), 'aliases are not accepted')
    },
  })
  const out = new Map<string, Value>()
  if (doc.contents === null) return out
  if (!isMap(doc.contents)) throw new ConfigError(at(doc.contents.range?.[0]), 'must be a mapping of option: value')
  if (doc.contents.items.length > MAX_KEYS) throw new ConfigError(at(0), `more than ${MAX_KEYS} keys`)
  for (const pair of doc.contents.items) {
    const keyNode = pair.key
    const where = at(isScalar(keyNode) ? keyNode.range?.[0] : undefined)
    const key = isScalar(keyNode) ? keyNode.value : undefined
    const spec = OPTIONS.find((o) => o.key !== undefined && o.key === key)
    if (spec === undefined) {
      const name = typeof key === 'string' ? key.slice(0, 64) : String(key)
      throw new ConfigError(where, `unknown option ${JSON.stringify(name)} (the options are listed in docs/config.md)`)
    }
    const value = (pair.value as { toJSON?: () => unknown } | null)?.toJSON?.() ?? null
    const valueWhere = at((pair.value as { range?: [number] } | null)?.range?.[0] ?? keyNode?.range?.[0])
    out.set(spec.name, parseValue(spec, value, valueWhere, dirname(resolve(file))))
  }
  return out
}

/** Resolves every option: flag > env > file > default. */
export async function resolveConfig(input: ConfigInput): Promise<ResolvedConfig> {
  const values: Record<string, Value | undefined> = {}
  const sources: Record<string, ConfigSource> = {}
  const fromFlagOrEnv = (spec: OptionSpec): boolean => {
    const flag = input.flags[spec.name]
    if (flag !== undefined) {
      values[spec.name] = parseValue(spec, flag, spec.flag?.split(' ')[0] ?? spec.name, input.cwd)
      sources[spec.name] = 'flag'
      return true
    }
    const env = input.env[spec.env]
    if (env !== undefined && env !== '') {
      values[spec.name] = parseValue(spec, env, spec.env, input.cwd)
      sources[spec.name] = 'env'
      return true
    }
    return false
  }
  const setDefault = (spec: OptionSpec): void => {
    const d = spec.default?.(input)
    values[spec.name] = d === undefined ? undefined : parseValue(spec, d, 'default', input.cwd)
    sources[spec.name] = 'default'
  }
  const configSpec = OPTIONS.find((o) => o.name === 'config') as OptionSpec
  if (!fromFlagOrEnv(configSpec)) setDefault(configSpec)
  const file = values.config as string
  const text = await readBounded(file, sources.config === 'default')
  const fromFile = text === undefined ? new Map<string, Value>() : parseConfigFile(text, file)
  for (const spec of OPTIONS) {
    if (spec.name === 'config' || fromFlagOrEnv(spec)) continue
    if (fromFile.has(spec.name)) {
      values[spec.name] = fromFile.get(spec.name)
      sources[spec.name] = 'file'
    } else setDefault(spec)
  }
  return {
    values: values as unknown as ConfigValues,
    sources: sources as ResolvedConfig['sources'],
    file: text === undefined ? null : file,
  }
}
