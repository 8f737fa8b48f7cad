/**
 * `llmesh agent run [--agent-root <dir>] [--agent-health-window <d>] -- <launcher args…>`: the
 * supervisor wrapper of an agent installed side by side (node/agent-update/runner.ts). It runs
 * `<root>/current/bin/llmesh <args>` (e.g. `-- node start --config /etc/llmesh/llmesh.yaml`),
 * restarts it when it exits to switch versions, and rolls a new version back by itself when it
 * does not come up within the health window. SIGTERM/SIGINT go to the agent; the wrapper exits
 * with the agent's code.
 *
 * cli/bin.ts runs `agent run` through its lean entry (cli/agent-run.ts) without this command table;
 * it is registered here for `--help` and for callers of the program.
 */
import type { Command } from 'commander'
import { optionSpec } from '../../node/config/options.ts'
import { optionHelp } from '../config-flags.ts'
import { action } from '../output.ts'

/** Registers `agent run`. */
export function registerAgent(program: Command): void {
  const agent = program.command('agent').description('run the agent installed side by side, with automatic rollback')
  agent
    .command('run [args...]')
    .description(
      'run <root>/current/bin/llmesh <args> (after --), switching versions and rolling back a new one that does not come up',
    )
    .option(optionSpec('agent_root').flag as string, optionHelp(optionSpec('agent_root')))
    .option(optionSpec('agent_health_window').flag as string, optionHelp(optionSpec('agent_health_window')))
    .option('--config <file>', 'configuration file (agent_root, agent_health_window)')
    .action(
      action(async (args: string[], opts: { config?: string; agentRoot?: string; agentHealthWindow?: string }) => {
        const flags: Record<string, string> = {}
        if (opts.config !== undefined) flags.config = opts.config
        if (opts.agentRoot !== undefined) flags.agent_root = opts.agentRoot
        if (opts.agentHealthWindow !== undefined) flags.agent_health_window = opts.agentHealthWindow
        const { runAgentWith } = await import('../agent-run.ts')
        process.exitCode = await runAgentWith(flags, args)
      }),
    )
}
