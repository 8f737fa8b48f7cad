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
import { writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { DEFAULT_API } from '../../node/constants.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { parseDuration } from '../../protocols/duration.ts'
import { createInvite, DEFAULT_INVITE_TTL_MS, type InviteFile } from '../../protocols/membership/index.ts'
import type { DeviceInvite } from '../../protocols/schemas/index.ts'
import { parseTags } from '../../seed/devices.ts'
import { callApi, nodeUrl } from '../api-client.ts'
import { action, CliError, type OutputOptions, print } from '../output.ts'

interface InviteOptions extends OutputOptions {
  api?: string
  data?: string
  fleet?: string
  tags?: string
  name?: string
  ttl?: string
  uses?: string
  out: string
}

async function invite(opts: InviteOptions): Promise<void> {
  const tags = opts.tags === undefined ? [] : parseTags(opts.tags)
  const ttlMs = opts.ttl === undefined ? DEFAULT_INVITE_TTL_MS : parseDuration(opts.ttl)
  const uses = opts.uses === undefined ? 1 : Number(opts.uses)
  if (!Number.isInteger(uses) || uses < 1) throw new CliError('--uses must be a whole number ≥ 1', 'ERR_INVALID_INPUT')
  let out: { file: InviteFile; invite: Omit<DeviceInvite, 'public_key'> }
  if (opts.fleet !== undefined) {
    const fleet = await loadFleet(opts.fleet)
    if (fleet.operatorSigner === undefined)
      throw new CliError(`${opts.fleet} holds no operator key`, 'ERR_NO_OPERATOR_KEY')
    const made = await createInvite(
      { fleet: fleet.root.fleet, tags, name: opts.name, uses, ttlMs, now: Date.now() },
      fleet.operatorSigner,
    )
    const { public_key: _k, ...shown } = made.invite
    out = { file: made.file, invite: shown }
  } else {
    const url = await nodeUrl(opts)
    const body = { tags, ...(opts.name === undefined ? {} : { name: opts.name }), ttl_ms: ttlMs, uses }
    out = (await callApi(`${url}/invites`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })) as typeof out
  }
  // the file is a secret: whoever holds it may enroll a device
  await writeFile(opts.out, `${JSON.stringify(out.file)}\n`, { mode: 0o600 })
  const i = out.invite
  print(
    opts,
    { out: opts.out, invite: i },
    () =>
      `invite ${i.id} written to ${opts.out} (secret): tags=${i.tags.join(',') || '-'}${i.name ? ` name=${i.name}` : ''} uses=${i.uses} expires ${new Date(i.expires_at).toISOString()}`,
  )
}

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
    .action(action((opts: InviteOptions) => invite(opts)))
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
