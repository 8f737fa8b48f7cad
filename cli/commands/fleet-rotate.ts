/**
 * `llmesh fleet rotate-swarm-key <dir>`: rotates the fleet's join secret. Signs, with the fleet
 * directory's operator key, a `SwarmKeyRotation` carrying a new key sealed to every enrolled,
 * non-revoked device the node knows (and to the node itself), publishes it through that node
 * (`--api`, the seed), and puts the new key in the directory's swarm.key (the old one kept as
 * `swarm.key.<epoch>`). Every recipient switches at `--switch-in` from now; a device that was
 * offline through the switch needs the directory's new swarm.key (docs/protocol.md).
 */
import type { Command } from 'commander'
import { action } from '../output.ts'
import type { RotateOptions } from './fleet-rotate-run.ts'

/** Registers `llmesh fleet rotate-swarm-key` on the `fleet` command. */
export function registerFleetRotateSwarmKey(fleet: Command): void {
  fleet
    .command('rotate-swarm-key <dir>')
    .description(
      'rotate the join secret: a new swarm.key sealed to every enrolled, non-revoked device; revoked ones are left out',
    )
    .option('--api <url>', 'the node to publish through and learn devices from (the seed)')
    .option('--data <dir>', 'data directory of a local node (its API address)')
    .option('--switch-in <duration>', 'when every node switches, from now (e.g. 30s, 5m)', '30s')
    .option('--json', 'print JSON')
    .action(action(async (dir: string, o: RotateOptions) => (await import('./fleet-rotate-run.ts')).rotate(dir, o)))
}
