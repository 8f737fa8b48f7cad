/**
 * `llmesh device list|enroll|tag|revoke`: the operator's device management.
 *
 * Through the seed (default): `GET /devices`, `POST /devices/:peer/enrollment`,
 * `POST /devices/:peer/revocation`; the seed signs with the operator key. With `--fleet <dir>`
 * holding the operator key, the CLI signs the DeviceEnrollment / Revocation itself and POSTs the
 * signed wire bytes to any node (`POST /messages`), which verifies and gossips them; for an
 * enrollment it reads the device's capabilities from the node's `GET /devices/:peer` when the
 * node serves it (a seed), else from `--arch --ram-mb --device-type`.
 * `device list` on a node without `/devices` falls back to its `GET /status` device list.
 */

import type { Command } from 'commander'
import { DEFAULT_API } from '../../node/constants.ts'
import type { FleetDevice } from '../../protocols/fleet/device-view.ts'
import type { DeviceCapabilities, DeviceView } from '../../seed/devices.ts'
import { ApiClient, type EnrollResponse, type RevokeResponse } from '../api-client.ts'
import { action, CliError, type OutputOptions, print, UsageError } from '../output.ts'
import { table } from '../table.ts'
import { type EnrollFn, registerDeviceInvite } from './device-invite.ts'

interface DeviceOptions extends OutputOptions {
  api?: string
  data?: string
  fleet?: string
  tags?: string
  reason?: string
  arch?: string
  ramMb?: string
  deviceType?: string
}

/** The device helpers and the signing code (zod, sigstore): loaded only by the commands that sign. */
async function signing() {
  const devices = await import('../../seed/devices.ts')
  const { signOperatorMessage } = await import('../../protocols/signing/index.ts')
  const { messageIdOfWire } = await import('../../protocols/signing/message-id.ts')
  const { CpuArch } = await import('../../protocols/schemas/index.ts')
  return { ...devices, signOperatorMessage, messageIdOfWire, CpuArch }
}

/** A peer id and tags checked by the seed's own rules, a bad one a usage error. */
async function checkedArgs(peer: string, tags: string | undefined) {
  const { validPeer, parseTags } = await import('../../seed/devices.ts')
  try {
    return { device: validPeer(peer), tags: tags === undefined ? undefined : parseTags(tags) }
  } catch (err) {
    throw new UsageError((err as Error).message, 'ERR_INVALID_INPUT')
  }
}

async function operatorKey(dir: string) {
  const { loadFleet } = await import('../../node/fleet/index.ts')
  const fleet = await loadFleet(dir)
  if (fleet.operatorSigner === undefined) throw new CliError(`${dir} holds no operator key`, 'ERR_NO_OPERATOR_KEY')
  return { fleet: fleet.root.fleet, signer: fleet.operatorSigner }
}

/** Capabilities from the flags, over what the node knows. */
async function capabilitiesOf(
  opts: DeviceOptions,
  known: DeviceCapabilities | null | undefined,
): Promise<DeviceCapabilities> {
  const flags = opts.arch !== undefined || opts.ramMb !== undefined || opts.deviceType !== undefined
  if (!flags && known) return known
  if (opts.arch === undefined || opts.ramMb === undefined)
    throw new CliError(
      'the node does not know this device’s capabilities: pass --arch, --ram-mb (and --device-type), or use the seed’s API',
      'ERR_UNKNOWN_DEVICE',
    )
  const { CpuArch } = await import('../../protocols/schemas/index.ts')
  const arch = CpuArch.safeParse(opts.arch)
  const ram = Number(opts.ramMb)
  if (!arch.success || !Number.isInteger(ram) || ram < 0)
    throw new UsageError('--arch must be arm64|x64|arm|riscv64|any and --ram-mb a whole number', 'ERR_INVALID_INPUT')
  return { arch: arch.data, ram_mb: ram, device_type: opts.deviceType ?? known?.device_type ?? 'generic' }
}

/** What an enrollment prints: the seed's answer (or the locally signed one) and who signed it. */
type EnrollOut = EnrollResponse & { via: 'seed' | 'local-key' }

async function enroll(peer: string, opts: DeviceOptions, retag: boolean): Promise<void> {
  const { device, tags } = await checkedArgs(peer, opts.tags)
  if (retag && tags === undefined) throw new UsageError('give the new tags with --tags a,b', 'ERR_INVALID_INPUT')
  const client = await ApiClient.connect(opts)
  let out: EnrollOut
  if (opts.fleet === undefined) {
    out = { ...(await client.enroll(device, { tags, retag })), via: 'seed' }
  } else {
    const { buildEnrollment, signOperatorMessage, messageIdOfWire } = await signing()
    const key = await operatorKey(opts.fleet)
    const info = await client.device(device)
    if (info?.state === 'revoked') throw new CliError(`${device} is revoked (final)`, 'ERR_REVOKED')
    if (retag && info !== undefined && info.state === 'unenrolled')
      throw new CliError(`${device} holds no enrollment: use enroll`, 'ERR_NOT_ENROLLED')
    const chosen = tags ?? info?.declared_tags ?? (info?.state === 'enrolled' ? info.tags : undefined)
    if (chosen === undefined) throw new UsageError(`give the device’s tags with --tags`, 'ERR_INVALID_INPUT')
    const enrollment = buildEnrollment({
      fleet: key.fleet,
      device,
      tags: chosen,
      capabilities: await capabilitiesOf(opts, info?.capabilities),
      current: info?.enrolled_at != null ? { issued_at: info.enrolled_at, tags: info.tags } : undefined,
      now: Date.now(),
    })
    const wire = await signOperatorMessage(enrollment, key.signer)
    await client.postMessage(wire)
    out = { enrollment, digest: messageIdOfWire(wire), pinned: true, via: 'local-key' }
  }
  const e = out.enrollment
  print(opts, out, () => `enrolled ${e.device} tags=${e.tags.join(',') || '-'}${out.pinned ? ' (pinned)' : ''}`)
}

async function revoke(peer: string, opts: DeviceOptions): Promise<void> {
  const { device } = await checkedArgs(peer, undefined)
  if (opts.reason === undefined || opts.reason.trim() === '')
    throw new UsageError('say why with --reason <text>', 'ERR_INVALID_INPUT')
  const client = await ApiClient.connect(opts)
  let out: RevokeResponse & { via: 'seed' | 'local-key' }
  if (opts.fleet === undefined) {
    out = { ...(await client.revoke(device, opts.reason)), via: 'seed' }
  } else {
    const { buildRevocation, signOperatorMessage, messageIdOfWire } = await signing()
    const key = await operatorKey(opts.fleet)
    const revocation = buildRevocation(key.fleet, device, opts.reason, Date.now())
    const wire = await signOperatorMessage(revocation, key.signer)
    await client.postMessage(wire)
    out = { revocation, digest: messageIdOfWire(wire), via: 'local-key' }
  }
  print(opts, out, (o) => `revoked ${o.revocation.device}: ${o.revocation.reason}`)
}

/** A node without /devices: its /status device list (the same fleet device view). */
function fromStatus(d: FleetDevice): DeviceView {
  return { ...d, state: d.membership, pinned: false, connected: false }
}

function human(devices: DeviceView[]): string {
  if (devices.length === 0) return '(no devices)'
  const ago = (t: number | null) => (t === null ? '-' : `${Math.max(0, Math.round((Date.now() - t) / 1000))}s ago`)
  return table(
    ['device', 'name', 'state', 'site', 'tags', 'declared', 'hardware', 'versions', 'agent', 'last report', 'note'],
    devices.map((d) => [
      d.id,
      d.name,
      `${d.membership === 'pending' ? 'pending' : d.state}${d.pinned ? ' pinned' : ''}`,
      d.site,
      d.tags.join(','),
      // what the device says of itself, when it differs from its tags
      d.declared_tags && d.declared_tags.join(',') !== d.tags.join(',') ? d.declared_tags.join(',') || '(none)' : '',
      d.capabilities ? `${d.capabilities.arch}/${d.capabilities.ram_mb}MB` : '',
      d.active.join(','),
      // stuck: the fleet refuses the agent version it runs and it has none to go back to (--json: why)
      d.agent_stuck === null ? d.agent_version : `${d.agent_version ?? '?'} STUCK`,
      ago(d.last_report),
      d.revoked ? `revoked: ${d.revoked.reason}` : '',
    ]),
  )
}

/** Registers `device`. */
export function registerDevice(program: Command): void {
  const device = program.command('device').description('operator device management: list, enroll, re-tag, revoke')
  const common = (cmd: Command): Command =>
    cmd
      .option('--api <url>', `node API (default http://${DEFAULT_API}; the seed, or any node with --fleet)`)
      .option('--data <dir>', 'read the API address from <dir>/node.json')
      .option('--json', 'print JSON')
  const signing = (cmd: Command): Command =>
    common(cmd).option(
      '--fleet <dir>',
      'sign locally with this fleet directory’s operator key and send through any node',
    )
  const caps = (cmd: Command): Command =>
    cmd
      .option('--arch <arch>', 'with --fleet, when the node does not know the device: its CPU architecture')
      .option('--ram-mb <n>', 'with --fleet, when the node does not know the device: its RAM in MiB')
      .option('--device-type <type>', 'with --fleet: its device type')

  common(device.command('list').description('enrolled, revoked and seen-but-unenrolled devices'))
    .option('--site <name>', 'only the devices of this site (--site on the node, the tag site:<name>)')
    .action(
      action(async (opts: DeviceOptions & { site?: string }) => {
        const client = await ApiClient.connect(opts)
        const all = (await client.devices())?.devices ?? (await client.status()).devices.map(fromStatus)
        const devices = opts.site === undefined ? all : all.filter((d) => d.site === opts.site)
        print(opts, { devices }, (o) => human(o.devices))
      }),
    )
  caps(
    signing(
      device
        .command('enroll <peer>')
        .description('enroll a device (without --tags: the tags it declares, kept automatic)'),
    ).option('--tags <a,b>', 'pin these tags (the auto-enroller will not change them)'),
  ).action(action((peer: string, opts: DeviceOptions) => enroll(peer, opts, false)))
  caps(
    signing(device.command('tag <peer>').description('re-tag an enrolled device (pins its tags)')).requiredOption(
      '--tags <a,b>',
      'the new tags (comma-separated; empty for none)',
    ),
  ).action(action((peer: string, opts: DeviceOptions) => enroll(peer, opts, true)))
  signing(device.command('revoke <peer>').description('revoke a device: final; its reports and verdicts stop counting'))
    .requiredOption('--reason <text>', 'why (kept in the signed revocation)')
    .action(action((peer: string, opts: DeviceOptions) => revoke(peer, opts)))
  registerDeviceInvite(device, enroll as EnrollFn)
}
