/**
 * `llmesh fleet …`: create a fleet directory (trust root, operator key, swarm key), show it,
 * rotate its operator key, export what one device needs (fleet-export-run.ts).
 */
import { type Command, InvalidArgumentError, Option } from 'commander'
import type { Fleet } from '../../node/fleet/index.ts'
import { action, print } from '../output.ts'
import { registerFleetReport } from './fleet-report.ts'
import { registerFleetRotateSwarmKey } from './fleet-rotate.ts'

/** What `fleet init|show|rotate-key --json` print. Never includes secrets. */
export interface FleetSummary {
  dir: string
  fleet: string
  version: number
  keys: Array<{ keyid: string; alg: string }>
  threshold: number
  expires_at: number | null
  operator_key: boolean
  /** Whether the seed enrolls every holder of the join secret (labs only). */
  auto_enroll: boolean
}

/** What `fleet show` says of a fleet with `auto_enroll` on. */
export const AUTO_ENROLL_WARNING =
  'WARNING: auto_enroll is on: anyone holding swarm.key is enrolled with the tags it declares and votes in rollouts (labs only; use invites)'

function summary(f: Fleet): FleetSummary {
  return {
    dir: f.dir,
    fleet: f.root.fleet,
    version: f.root.version,
    keys: f.root.keys.map((k) => ({ keyid: k.keyid, alg: k.alg })),
    threshold: f.root.threshold,
    expires_at: f.root.expires_at ?? null,
    operator_key: f.operatorSigner !== undefined,
    auto_enroll: f.root.auto_enroll,
  }
}

function human(s: FleetSummary): string {
  return [
    `fleet ${s.fleet} in ${s.dir}`,
    `  trust root v${s.version}, threshold ${s.threshold}${s.expires_at === null ? '' : `, expires ${new Date(s.expires_at).toISOString()}`}`,
    ...s.keys.map((k) => `  key ${k.keyid} (${k.alg})`),
    `  operator key ${s.operator_key ? 'present' : 'absent'}`,
    s.auto_enroll ? `  ${AUTO_ENROLL_WARNING}` : '  enrollment by invite (llmesh device invite) or approval',
  ].join('\n')
}

function days(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) === 0) throw new InvalidArgumentError('must be a positive number of days')
  return Number(v)
}

/** The fleet module (node:crypto keys, sigstore): loaded only when a fleet command runs. */
const fleetModule = () => import('../../node/fleet/index.ts')

const algOption = () => new Option('--alg <alg>', 'operator key algorithm').choices(['ecdsa-p256', 'ed25519'])

/** Registers `llmesh fleet`. */
export function registerFleet(program: Command): void {
  const fleet = program.command('fleet').description('create and manage a fleet directory')
  fleet
    .command('init <dir>')
    .description('create a fleet: trust-root.json (public), operator.key and swarm.key (0600); never overwrites')
    .option('--fleet-id <id>', 'fleet id (a-z, 0-9, -)', 'default-fleet')
    .addOption(algOption().default('ecdsa-p256'))
    .option('--expires-days <n>', 'trust root lifetime in days (default: no expiry)', days)
    .option('--auto-enroll', 'labs only: enroll every holder of swarm.key with the tags it declares')
    .option('--json', 'print JSON')
    .action(
      action(
        async (
          dir: string,
          o: {
            fleetId: string
            alg: 'ecdsa-p256' | 'ed25519'
            expiresDays?: number
            autoEnroll?: boolean
            json?: boolean
          },
        ) => {
          const { initFleet } = await fleetModule()
          const f = await initFleet(dir, {
            fleetId: o.fleetId,
            alg: o.alg,
            autoEnroll: o.autoEnroll === true,
            ...(o.expiresDays === undefined ? {} : { expiresInMs: o.expiresDays * 86_400_000 }),
          })
          print(o, summary(f), (s) => `created ${human(s)}`)
        },
      ),
    )
  fleet
    .command('show <dir>')
    .description('verify and show a fleet directory')
    .option('--json', 'print JSON')
    .action(
      action(async (dir: string, o: { json?: boolean }) => {
        const { loadFleet } = await fleetModule()
        print(o, summary(await loadFleet(dir)), human)
      }),
    )
  fleet
    .command('rotate-key <dir>')
    .description('rotate the operator key: new root (version + 1) signed by the old and the new key')
    .addOption(algOption())
    .option('--json', 'print JSON')
    .action(
      action(async (dir: string, o: { alg?: 'ecdsa-p256' | 'ed25519'; json?: boolean }) => {
        const { rotateFleetKey } = await fleetModule()
        const f = await rotateFleetKey(dir, o.alg === undefined ? {} : { alg: o.alg })
        print(o, summary(f), (s) => `rotated ${human(s)}`)
      }),
    )
  fleet
    .command('export <dir>')
    .description('write what one device needs (trust root, join secret, an invite, llmesh.yaml), never operator.key')
    .requiredOption('--device <dir>', 'the directory to write (new or empty; made 0700)')
    .option('--invite-tags <a,b>', 'tags the invite enrolls the device with')
    .option('--name <name>', 'a name for the device, carried by the invite')
    .option('--invite-ttl <duration>', 'how long the invite may be claimed', '7d')
    .option('--invite-uses <n>', 'how many devices the invite may enroll', '1')
    .option('--no-invite', 'write no invite (the device stays pending until approved, unless auto_enroll)')
    .option(
      '--set <key=value>',
      'a key of llmesh.yaml (docs/config.md), repeatable',
      (v: string, acc: string[] = []) => [...acc, v],
    )
    .option('--json', 'print JSON')
    .action(
      action(async (dir: string, o: import('./fleet-export-run.ts').ExportOptions) =>
        (await import('./fleet-export-run.ts')).runExport(dir, o),
      ),
    )
  registerFleetRotateSwarmKey(fleet)
  registerFleetReport(fleet)
}
