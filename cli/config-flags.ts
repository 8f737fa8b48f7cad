/**
 * The start commands' flags, generated from the one option table (node/config/options.ts): each
 * option's flag, with its help naming the `LLMESH_*` variable, the file key and the default. No
 * commander default is set, so a flag the operator did not type never hides a variable or a file
 * value (`flagsGiven` returns only the typed ones).
 */
import { type Command, Option } from 'commander'
import { OPTIONS, type OptionRole, type OptionSpec, runsInstalled } from '../node/config/options.ts'
import { UsageError } from './output.ts'

function collect(value: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), value]
}

/** The help line of an option: its help, variable, file key and default. */
export function optionHelp(o: OptionSpec): string {
  const where = [`env ${o.env}`, ...(o.key === undefined ? [] : [`file ${o.key}`])].join(', ')
  return `${o.help} (${where}; default ${o.defaultText.replaceAll('`', '')})`
}

/** Adds every option that has a flag to `cmd`. */
export function addConfigOptions(cmd: Command): Command {
  for (const o of OPTIONS) {
    if (o.flag === undefined) continue
    const opt = new Option(o.flag, optionHelp(o))
    if (o.repeatable === true) opt.argParser(collect)
    cmd.addOption(opt)
  }
  const envOnly = OPTIONS.filter((o) => o.flag === undefined && o.name !== 'config')
  return cmd.addHelpText(
    'after',
    ['', 'Set by the environment only:', ...envOnly.map((o) => `  ${o.env.padEnd(28)}  ${optionHelp(o)}`)].join('\n'),
  )
}

/** The flags the operator typed, by option name (for node/config/resolve.ts). */
export function flagsGiven(cmd: Command): Record<string, string | boolean | string[]> {
  const out: Record<string, string | boolean | string[]> = {}
  const opts = cmd.opts()
  for (const o of OPTIONS) {
    if (o.flag === undefined) continue
    const attr = new Option(o.flag).attributeName()
    if (cmd.getOptionValueSource(attr) !== 'cli') continue
    out[o.name] = opts[attr] as string | boolean | string[]
  }
  return out
}

/** The effective configuration of `role` from the typed flags, the environment, the file and the defaults. */
export async function loadConfig(role: OptionRole, flags: Record<string, string | boolean | string[]>) {
  const { resolveConfig } = await import('../node/config/resolve.ts')
  const { ConfigError } = await import('../node/config/errors.ts')
  try {
    return await resolveConfig({ role, installed: runsInstalled(), flags, env: process.env, cwd: process.cwd() })
  } catch (err) {
    // a wrong flag, variable or file is the operator's to fix: a usage error naming where
    if (err instanceof ConfigError) throw new UsageError(err.message, err.code)
    throw err
  }
}
