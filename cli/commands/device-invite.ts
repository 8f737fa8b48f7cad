/**
 * `llmesh device invite` and `llmesh device approve`: how devices join a fleet whose `auto_enroll`
 * is off (the default; docs/protocol.md, "Membership").
 *
 * - `device invite [--tags a,b] [--name N] [--ttl 24h] [--uses 1] --out <file>` writes an invite
 *   file (0600): signed by the seed (`POST /invites`), or locally with `--fleet <dir>` (the operator
 *   key; no node needed). Hand it to one device: `llmesh node start … --invite <file>`.
 * - `device approve <peer> [--tags a,b]` enrolls a pending device (an operator-signed enrollment,
 *   as `device enroll`).
 */
import type { Command } from 'commander'
import { DEFAULT_API } from '../../node/constants.ts'
import { action, type OutputOptions } from '../output.ts'
import type { InviteOptions } from './device-invite-run.ts'

/** How `device approve` enrolls (device.ts's `enroll`, passed in: no import cycle). */
export type EnrollFn = (peer: string, opts: OutputOptions & Record<string, unknown>, retag: boolean) => Promise<void>

/** Registers `device invite` and `device approve` under `device`. */
export function registerDeviceInvite(device: Command, enroll: EnrollFn): void {
  device
    .command('invite')
    .description('write an invite file: a device started with --invite <file> joins with its tags')
    .requiredOption('--out <file>', 'where to write the invite (mode 0600; it is a secret)')
    .option('--tags <a,b>', 'tags of the device it enrolls')
    .option('--name <name>', 'a name for the device')
    .option('--ttl <duration>', 'how long it may be claimed (e.g. 24h, 7d)', '24h')
    .option('--uses <n>', 'how many devices it may enroll', '1')
    .option('--fleet <dir>', 'sign locally with this fleet directory’s operator key (no node needed)')
    .option('--api <url>', `the seed's API (default http://${DEFAULT_API})`)
    .option('--data <dir>', 'read the API address from <dir>/node.json')
    .option('--json', 'print JSON')
    .action(action(async (opts: InviteOptions) => (await import('./device-invite-run.ts')).invite(opts)))
  device
    .command('approve <peer>')
    .description('enroll a pending device (operator-signed)')
    .option('--tags <a,b>', 'its tags (default: those it declares)')
    .option('--fleet <dir>', 'sign locally with this fleet directory’s operator key and send through any node')
    .option('--arch <arch>', 'with --fleet, when the node does not know the device: its CPU architecture')
    .option('--ram-mb <n>', 'with --fleet, when the node does not know the device: its RAM in MiB')
    .option('--device-type <type>', 'with --fleet: its device type')
    .option('--api <url>', `node API (default http://${DEFAULT_API}; the seed, or any node with --fleet)`)
    .option('--data <dir>', 'read the API address from <dir>/node.json')
    .option('--json', 'print JSON')
    .action(action((peer: string, opts: OutputOptions & Record<string, unknown>) => enroll(peer, opts, false)))
}
