/**
 * `llmesh agent run [--config <file>] [--agent-root <dir>] [--agent-health-window <d>] -- <launcher
 * args…>`, the device unit's supervisor (node/agent-update/runner.ts), as a lean entry: cli/bin.ts
 * comes here before loading commander or anything else, so the process that stays up beside the
 * daemon for the device's whole life holds Node, its built-in modules and these few modules only —
 * no zod, yaml, pino, semver, commander, libp2p or fastify (measured: 65 MiB RSS through the CLI's
 * command table, ~48 here; docs/benchmarks.md, "Idle footprint of a device"; a test spawns it and
 * checks which modules it loads: test/unit/agent-runner-lean.test.ts).
 *
 * The configuration (agent_root, agent_health_window, log_level, log_format: flag > env > file >
 * default) is resolved once by a short-lived child process running the full resolver
 * (cli/agent-config.ts): the same checks and the same errors as before, a refused file or flag is a
 * usage error (exit 2) naming where. `--help` goes to the CLI's command table (cli/commands/agent.ts).
 */
import { execFile } from 'node:child_process'
import { parseArgs } from 'node:util'
import { AGENT_CONFIG_MAX_BYTES, AGENT_CONFIG_TIMEOUT_MS } from '../node/agent-update/constants.ts'
import { createAgentLog } from '../node/agent-update/log.ts'
import { AgentRunner } from '../node/agent-update/runner.ts'
import { siblingModule } from '../node/module-path.ts'
import { CliError, type ErrorClass, fail, UsageError } from './output.ts'

/** The supervisor's part of the configuration. */
export interface AgentRunConfig {
  agent_root: string
  /** ms */
  agent_health_window: number
  /** Exec the daemon when no version is on probation (node/agent-update/handover.ts). */
  agent_handover: boolean
  log_level: string
  log_format?: string
}

/** The flags of `agent run`, by option name (node/config/options.ts). */
const FLAGS = { config: 'config', 'agent-root': 'agent_root', 'agent-health-window': 'agent_health_window' } as const

/** Splits `agent run`'s arguments (those after `agent run`) into its flags and the launcher's arguments. */
export function parseAgentRunArgs(argv: string[]): { flags: Record<string, string>; args: string[] } {
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: 'string' as const }])),
      allowPositionals: true,
      strict: true,
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const flags: Record<string, string> = {}
  for (const [flag, name] of Object.entries(FLAGS)) {
    const v = parsed.values[flag]
    if (typeof v === 'string') flags[name] = v
  }
  return { flags, args: parsed.positionals }
}

/** `agent run`'s own command line (after the launcher) for `flags` (by option name) and the launcher's arguments. */
export function agentRunArgv(flags: Record<string, string>, args: string[]): string[] {
  const out = ['agent', 'run']
  for (const [flag, name] of Object.entries(FLAGS)) {
    const v = flags[name]
    if (v !== undefined) out.push(`--${flag}`, v)
  }
  return [...out, '--', ...args]
}

/** Resolves the configuration in a short-lived child process (cli/agent-config.ts). */
export function resolveAgentConfig(flags: Record<string, string>): Promise<AgentRunConfig> {
  const entry = siblingModule(import.meta.url, './agent-config')
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...process.execArgv, entry, JSON.stringify(flags)],
      { timeout: AGENT_CONFIG_TIMEOUT_MS, maxBuffer: AGENT_CONFIG_MAX_BYTES, env: process.env },
      (err, stdout, stderr) => {
        let answer: { config?: AgentRunConfig; error?: { code: string; message: string; class: ErrorClass } }
        try {
          answer = JSON.parse(stdout)
        } catch {
          const why = (err?.message ?? stderr).split('\n')[0].slice(0, 300)
          return reject(new CliError(`could not read the configuration: ${why}`, 'ERR_AGENT_CONFIG'))
        }
        if (answer.error !== undefined) {
          const e = answer.error
          return reject(
            e.class === 'usage' ? new UsageError(e.message, e.code) : new CliError(e.message, e.code, e.class),
          )
        }
        if (answer.config === undefined) return reject(new CliError('no configuration', 'ERR_AGENT_CONFIG'))
        resolve(answer.config)
      },
    )
  })
}

/** Runs the supervisor with `agent run`'s flags (by option name) and the launcher's arguments; resolves with its exit code. */
export async function runAgentWith(flags: Record<string, string>, args: string[]): Promise<number> {
  const c = await resolveAgentConfig(flags)
  const format = c.log_format ?? (process.stderr.isTTY === true ? 'pretty' : 'json')
  const runner = new AgentRunner(
    {
      logger: createAgentLog({
        base: { role: 'agent-run' },
        level: c.log_level,
        format: format === 'pretty' ? 'pretty' : 'json',
      }),
    },
    {
      root: c.agent_root,
      args,
      healthWindowMs: c.agent_health_window,
      ...(c.agent_handover ? { handover: { handback: agentRunArgv(flags, args) } } : {}),
    },
  )
  process.on('SIGTERM', () => runner.stop('SIGTERM'))
  process.on('SIGINT', () => runner.stop('SIGINT'))
  return await runner.run()
}

/** `llmesh agent run <argv…>` (argv: the arguments after `agent run`); sets the exit code. */
export async function agentRun(argv: string[]): Promise<void> {
  try {
    const { flags, args } = parseAgentRunArgs(argv)
    process.exitCode = await runAgentWith(flags, args)
  } catch (err) {
    fail(err)
  }
}
