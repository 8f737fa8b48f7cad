import { Command } from 'commander'
import pkg from '../package.json' with { type: 'json' }
import { registerAgent } from './commands/agent.ts'
import { registerConfig } from './commands/config.ts'
import { registerDemo } from './commands/demo.ts'
import { registerDevice } from './commands/device.ts'
import { registerFleet } from './commands/fleet.ts'
import { registerModelCommands } from './commands/model.ts'
import { registerNode } from './commands/node.ts'
import { registerPackage } from './commands/package.ts'
import { registerRelease } from './commands/release.ts'
import { registerRollout } from './commands/rollout.ts'
import { registerVerify } from './commands/verify.ts'

/**
 * Builds the `llmesh` command tree. Each command group lives in `cli/commands/<group>.ts` and
 * exports a `register…(program)` function called here.
 */
export function buildProgram(): Command {
  const program = new Command('llmesh')
    .description('llmesh: a peer-to-peer mesh that ships, serves and canaries LLMs on edge fleets')
    .version(pkg.version, '-V, --version')
    .showHelpAfterError()
    // root options only before the subcommand, so `release publish --version <semver>` reaches the subcommand
    .enablePositionalOptions()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    // usage errors reach bin.ts as CommanderError (exit 2), inherited by every subcommand
    .exitOverride()
  // command groups register here
  registerFleet(program)
  registerVerify(program)
  registerPackage(program)
  registerNode(program)
  registerRelease(program)
  registerModelCommands(program)
  registerRollout(program)
  registerDevice(program)
  registerConfig(program)
  registerAgent(program)
  registerDemo(program)
  return program
}
