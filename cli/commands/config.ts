/**
 * `llmesh config print [--role node|seed] [start flags…]`: the effective value of every option of
 * node/config/options.ts and where it came from (`default`, `file`, `env` or `flag`), resolved
 * exactly as `llmesh node start` (or `seed start`) would with the same flags, environment and file.
 * Secrets show whether they are set, never their value.
 */
import { type Command, Option } from 'commander'
import { OPTIONS } from '../../node/config/options.ts'
import { addConfigOptions, flagsGiven, loadConfig } from '../config-flags.ts'
import { action, type OutputOptions, print } from '../output.ts'
import { table } from '../table.ts'

/** One row of `config print --json`. */
export interface ConfigRow {
  name: string
  value: string | number | boolean | string[] | null
  source: 'default' | 'file' | 'env' | 'flag'
  env: string
  key: string | null
  flag: string | null
}

/** What `config print --json` prints. */
export interface ConfigPrint {
  role: 'node' | 'seed'
  /** The configuration file read, or null (the default one is absent). */
  file: string | null
  options: ConfigRow[]
}

function shown(v: ConfigRow['value']): string {
  if (v === null) return '-'
  return Array.isArray(v) ? v.join(',') || '-' : String(v)
}

/** The aligned table of `config print`. */
export function humanConfig(p: ConfigPrint): string {
  const rows = p.options.map((o) => [o.name, shown(o.value), o.source, o.env])
  return `${p.role}, configuration file: ${p.file ?? '(none)'}\n${table(['option', 'value', 'source', 'variable'], rows)}`
}

/** Registers `config print`. */
export function registerConfig(program: Command): void {
  const config = program.command('config').description('the configuration: every option, its value and source')
  addConfigOptions(
    config
      .command('print')
      .description('print the effective value of every option and where it came from (default, file, env, flag)')
      .addOption(new Option('--role <role>', 'resolve as this daemon would').choices(['node', 'seed']).default('node'))
      .option('--json', 'print JSON'),
  ).action(
    action(async (opts: OutputOptions & { role: 'node' | 'seed' }, cmd: Command) => {
      const flags = flagsGiven(cmd)
      const r = await loadConfig(opts.role, flags)
      const values = r.values as unknown as Record<string, ConfigRow['value'] | undefined>
      const out: ConfigPrint = {
        role: opts.role,
        file: r.file,
        options: OPTIONS.map((o) => {
          const v = values[o.name] ?? null
          return {
            name: o.name,
            value: o.secret === true && v !== null ? '(set)' : v,
            source: r.sources[o.name as keyof typeof r.sources],
            env: o.env,
            key: o.key ?? null,
            flag: o.flag?.split(' ')[0] ?? null,
          }
        }),
      }
      print(opts, out, humanConfig)
    }),
  )
}
