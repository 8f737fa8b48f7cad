/**
 * `llmesh agent run [--agent-root <dir>] [--agent-health-window <d>] -- <launcher args…>`: the
 * supervisor wrapper of an agent installed side by side (node/agent-update/runner.ts). It runs
 * `<root>/current/bin/llmesh <args>` (e.g. `-- node start --config /etc/llmesh/llmesh.yaml`),
 * restarts it when it exits to switch versions, and rolls a new version back by itself when it
 * does not come up within the health window. SIGTERM/SIGINT go to the agent; the wrapper exits
 * with the agent's code.
 */
import type { Command } from 'commander'
import { optionSpec } from '../../node/config/options.ts'
import type { LogFormat } from '../../node/logger.ts'
import { flagsGiven, loadConfig, optionHelp } from '../config-flags.ts'
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
      action(async (args: string[], _opts: unknown, cmd: Command) => {
        const flags = flagsGiven(cmd)
        const { values: c } = await loadConfig('node', flags)
        const { createLogger } = await import('../../node/logger.ts')
        const { AgentRunner } = await import('../../node/agent-update/runner.ts')
        const runner = new AgentRunner(
          {
            logger: createLogger({
              base: { role: 'agent-run' },
              level: c.log_level,
              format: c.log_format as LogFormat | undefined,
            }),
          },
          { root: c.agent_root, args, healthWindowMs: c.agent_health_window },
        )
        process.on('SIGTERM', () => runner.stop('SIGTERM'))
        process.on('SIGINT', () => runner.stop('SIGINT'))
        process.exitCode = await runner.run()
      }),
    )
}
