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
import { loadFleet } from '../../node/fleet/index.ts'
import { CpuArch } from '../../protocols/schemas/index.ts'
import { signOperatorMessage } from '../../protocols/signing/index.ts'
import { messageIdOfWire } from '../../protocols/signing/message-id.ts'
import {
  buildEnrollment,
  buildRevocation,
  type DeviceCapabilities,
  type DeviceView,
  parseTags,
  validPeer,
} from '../../seed/devices.ts'
import { callApi, nodeUrl } from '../api-client.ts'
import { action, CliError, type OutputOptions, print } from '../output.ts'
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

const post = (url: string, body: unknown) =>
  callApi(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

const postWire = (url: string, wire: Uint8Array) =>
  callApi(`${url}/messages`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: wire })

async function operatorKey(dir: string) {
  const fleet = await loadFleet(dir)
  if (fleet.operatorSigner === undefined) throw new CliError(`${dir} holds no operator key`, 'ERR_NO_OPERATOR_KEY')
  return { fleet: fleet.root.fleet, signer: fleet.operatorSigner }
}

/** Capabilities from the flags, over what the node knows. */
function capabilitiesOf(opts: DeviceOptions, known: DeviceCapabilities | null | undefined): DeviceCapabilities {
  const flags = opts.arch !== undefined || opts.ramMb !== undefined || opts.deviceType !== undefined
  if (!flags && known) return known
  if (opts.arch === undefined || opts.ramMb === undefined)
    throw new CliError(
      'the node does not know this device’s capabilities: pass --arch, --ram-mb (and --device-type), or use the seed’s API',
      'ERR_UNKNOWN_DEVICE',
    )
  const arch = CpuArch.safeParse(opts.arch)
  const ram = Number(opts.ramMb)
  if (!arch.success || !Number.isInteger(ram) || ram < 0)
    throw new CliError('--arch must be arm64|x64|arm|riscv64|any and --ram-mb a whole number', 'ERR_INVALID_INPUT')
  return { arch: arch.data, ram_mb: ram, device_type: opts.deviceType ?? known?.device_type ?? 'generic' }
}

interface EnrollOut {
  enrollment: { device: string; tags: string[]; issued_at: number }
  digest: string
  pinned: boolean
  via: 'seed' | 'local-key'
}

async function enroll(peer: string, opts: DeviceOptions, retag: boolean): Promise<void> {
  const device = validPeer(peer)
  const url = await nodeUrl(opts)
  const tags = opts.tags === undefined ? undefined : parseTags(opts.tags)
  if (retag && tags === undefined) throw new CliError('give the new tags with --tags a,b', 'ERR_INVALID_INPUT')
  let out: EnrollOut
  if (opts.fleet === undefined) {
    const r = (await post(`${url}/devices/${device}/enrollment`, { tags, retag })) as Omit<EnrollOut, 'via'>
    out = { ...r, via: 'seed' }
  } else {
    const key = await operatorKey(opts.fleet)
    const info = (await callApi(`${url}/devices/${device}`, undefined, { missingOk: true }).catch((err) => {
      if ((err as CliError).code === 'ERR_NOT_FOUND') return undefined
      throw err
    })) as DeviceView | undefined
    if (info?.state === 'revoked') throw new CliError(`${device} is revoked (final)`, 'ERR_REVOKED')
    if (retag && info !== undefined && info.state === 'unenrolled')
      throw new CliError(`${device} holds no enrollment: use enroll`, 'ERR_NOT_ENROLLED')
    const chosen = tags ?? info?.declared_tags ?? (info?.state === 'enrolled' ? info.tags : undefined)
    if (chosen === undefined) throw new CliError(`give the device’s tags with --tags`, 'ERR_INVALID_INPUT')
    const enrollment = buildEnrollment({
      fleet: key.fleet,
      device,
      tags: chosen,
      capabilities: capabilitiesOf(opts, info?.capabilities),
      current: info?.enrolled_at != null ? { issued_at: info.enrolled_at, tags: info.tags } : undefined,
      now: Date.now(),
    })
    const wire = await signOperatorMessage(enrollment, key.signer)
    await postWire(url, wire)
    out = { enrollment, digest: messageIdOfWire(wire), pinned: true, via: 'local-key' }
  }
  const e = out.enrollment
  print(opts, out, () => `enrolled ${e.device} tags=${e.tags.join(',') || '-'}${out.pinned ? ' (pinned)' : ''}`)
}

async function revoke(peer: string, opts: DeviceOptions): Promise<void> {
  const device = validPeer(peer)
  const url = await nodeUrl(opts)
  if (opts.reason === undefined || opts.reason.trim() === '')
    throw new CliError('say why with --reason <text>', 'ERR_INVALID_INPUT')
  let out: { revocation: { device: string; reason: string }; digest: string; via: 'seed' | 'local-key' }
  if (opts.fleet === undefined) {
    const r = (await post(`${url}/devices/${device}/revocation`, { reason: opts.reason })) as Omit<typeof out, 'via'>
    out = { ...r, via: 'seed' }
  } else {
    const key = await operatorKey(opts.fleet)
    const revocation = buildRevocation(key.fleet, device, opts.reason, Date.now())
    const wire = await signOperatorMessage(revocation, key.signer)
    await postWire(url, wire)
    out = { revocation, digest: messageIdOfWire(wire), via: 'local-key' }
  }
  print(opts, out, (o) => `revoked ${o.revocation.device}: ${o.revocation.reason}`)
}

interface StatusDevice {
  id: string
  tags: string[]
  enrolled: boolean
  revoked: boolean
  active: string[]
  last_seen: number | null
}

/** A node without /devices: its /status device list, in the same shape. */
function fromStatus(d: StatusDevice): DeviceView {
  return {
    id: d.id,
    state: d.revoked ? 'revoked' : d.enrolled ? 'enrolled' : 'unenrolled',
    membership: d.revoked ? 'revoked' : d.enrolled ? 'enrolled' : 'pending',
    name: null,
    tags: d.tags,
    declared_tags: null,
    pinned: false,
    role: null,
    capabilities: null,
    enrolled_at: null,
    expires_at: null,
    revoked: null,
    connected: false,
    last_report: d.last_seen,
    active: d.active,
  }
}

function human(devices: DeviceView[]): string {
  if (devices.length === 0) return '(no devices)'
  const ago = (t: number | null) => (t === null ? '-' : `${Math.max(0, Math.round((Date.now() - t) / 1000))}s ago`)
  return devices
    .map((d) => {
      const caps = d.capabilities ? ` ${d.capabilities.arch}/${d.capabilities.ram_mb}MB` : ''
      const declared =
        d.declared_tags && d.declared_tags.join(',') !== d.tags.join(',')
          ? ` declared=${d.declared_tags.join(',') || '-'}`
          : ''
      const why = d.revoked ? `  (${d.revoked.reason})` : ''
      return `${d.id}  ${d.membership === 'pending' ? 'pending' : d.state}${d.pinned ? ' pinned' : ''}  tags=${d.tags.join(',') || '-'}${declared}${caps}  versions=${d.active.join(',') || '-'}  last report ${ago(d.last_report)}${why}`
    })
    .join('\n')
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

  common(device.command('list').description('enrolled, revoked and seen-but-unenrolled devices')).action(
    action(async (opts: DeviceOptions) => {
      const url = await nodeUrl(opts)
      const r = (await callApi(`${url}/devices`, undefined, { missingOk: true })) as
        | { devices: DeviceView[] }
        | undefined
      const devices =
        r?.devices ?? ((await callApi(`${url}/status`)) as { devices: StatusDevice[] }).devices.map(fromStatus)
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
