/**
 * `llmesh fleet export <fleet> --device <dir>` (registered by fleet.ts, loaded only when it runs):
 * writes the directory one device needs, and nothing more:
 *   trust-root.json   the fleet's public trust root and its signed chain (0644)
 *   swarm.key         the join secret (0600)
 *   invite            an invite signed here with the operator key (0600; `--no-invite`: none)
 *   llmesh.yaml       the device's configuration (keys of node/config/options.ts): `fleet: .`,
 *                     `invite: invite`, `name` (`--name`, also the invite's) and every
 *                     `--set key=value`, each checked against the table
 * never operator.key (nor a rotated key, nor any other file of the fleet directory). The directory
 * is made 0700 and must not exist or be empty. Paths in llmesh.yaml are relative to its directory,
 * so the directory works where it is (`llmesh node start --config <dir>/llmesh.yaml`) and copied to
 * /etc/llmesh by `install.sh --fleet <dir>`.
 */
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { stringify } from 'yaml'
import { OPTIONS } from '../../node/config/options.ts'
import { parseConfigFile, parseValue } from '../../node/config/resolve.ts'
import { loadFleet, SECRET_MODE, SWARM_KEY_FILE, TRUST_ROOT_FILE, trustFileJson } from '../../node/fleet/index.ts'
import { parseDuration } from '../../protocols/duration.ts'
import { createInvite } from '../../protocols/membership/index.ts'
import { parseTags } from '../../seed/devices.ts'
import { CliError, type OutputOptions, print, UsageError } from '../output.ts'

/** The files of an exported device directory. */
export const DEVICE_CONFIG_FILE = 'llmesh.yaml'
export const DEVICE_INVITE_FILE = 'invite'
/** How long an exported invite may be claimed unless `--invite-ttl` says otherwise (devices ship later than they are provisioned). */
export const EXPORT_INVITE_TTL = '7d'
/** Keys `--set` may not write: the export chooses them, or they must never reach a device. */
const RESERVED_KEYS = new Set(['fleet', 'invite', 'operator_key'])

/** Options of `llmesh fleet export`. */
export interface ExportOptions extends OutputOptions {
  device: string
  invite: boolean
  inviteTags?: string
  name?: string
  inviteTtl: string
  inviteUses: string
  set?: string[]
}

/** What `fleet export --json` prints. */
export interface ExportReport {
  dir: string
  fleet: string
  files: Array<{ name: string; mode: string }>
  invite: { id: string; tags: string[]; name: string | null; uses: number; expires_at: number } | null
  /** Set when the device will need `llmesh device approve` (no invite, auto_enroll off). */
  warning: string | null
}

/** The value `--set key=value` writes into llmesh.yaml, checked as the daemon will read it. */
function setting(arg: string, baseDir: string): [string, unknown] {
  const eq = arg.indexOf('=')
  if (eq <= 0) throw new UsageError(`--set ${arg}: expected key=value`)
  const key = arg.slice(0, eq).trim()
  const raw = arg.slice(eq + 1).trim()
  const spec = OPTIONS.find((o) => o.key === key)
  if (spec === undefined) throw new UsageError(`--set ${key}: no such key (docs/config.md lists them)`)
  if (RESERVED_KEYS.has(key)) throw new UsageError(`--set ${key}: written by the export itself, or never on a device`)
  const parsed = parseValue(spec, raw, `--set ${key}`, baseDir)
  // paths and durations as written (a relative path stays relative to llmesh.yaml)
  return [key, spec.kind === 'path' || spec.kind === 'duration' ? raw : parsed]
}

/** Writes the device directory; returns what it wrote. */
export async function exportDevice(fleetDir: string, o: ExportOptions, now = Date.now()): Promise<ExportReport> {
  const fleet = await loadFleet(fleetDir, { now })
  const out = resolve(o.device)
  const settings = (o.set ?? []).map((s) => setting(s, out))
  if (o.name !== undefined && settings.some(([k]) => k === 'name'))
    throw new UsageError('--name sets the name: not --set name= as well')
  const uses = Number(o.inviteUses)
  if (!Number.isInteger(uses) || uses < 1) throw new UsageError('--invite-uses must be a whole number ≥ 1')
  let invite: Awaited<ReturnType<typeof createInvite>> | undefined
  if (o.invite) {
    if (fleet.operatorSigner === undefined)
      throw new CliError(
        `${fleetDir} holds no operator key: cannot sign an invite (--no-invite)`,
        'ERR_NO_OPERATOR_KEY',
      )
    invite = await createInvite(
      {
        fleet: fleet.root.fleet,
        tags: o.inviteTags === undefined ? [] : parseTags(o.inviteTags),
        ...(o.name === undefined ? {} : { name: o.name }),
        uses,
        ttlMs: parseDuration(o.inviteTtl),
        now,
      },
      fleet.operatorSigner,
    )
  } else if (o.inviteTags !== undefined || o.name !== undefined) {
    throw new UsageError('--invite-tags and --name go with an invite (not with --no-invite)')
  }
  const config: Record<string, unknown> = {
    fleet: '.',
    ...(invite === undefined ? {} : { invite: DEVICE_INVITE_FILE }),
    ...(o.name === undefined ? {} : { name: o.name }),
    ...Object.fromEntries(settings),
  }
  const yaml = `# llmesh device configuration, written by \`llmesh fleet export\` for fleet ${fleet.root.fleet}.
# Keys: docs/config.md. Paths are relative to this file's directory.
${stringify(config)}`
  parseConfigFile(yaml, join(out, DEVICE_CONFIG_FILE)) // what the daemon will read: refuse it here, not there

  await mkdir(out, { recursive: true, mode: 0o700 })
  if ((await readdir(out)).length > 0)
    throw new CliError(`${out} is not empty: refusing to overwrite (export into a new directory)`, 'ERR_EXISTS')
  await chmod(out, 0o700)
  const files: Array<[string, string | Uint8Array, number]> = [
    [TRUST_ROOT_FILE, trustFileJson(fleet.root, fleet.chain), 0o644],
    [SWARM_KEY_FILE, fleet.swarmKey, SECRET_MODE],
    ...(invite === undefined
      ? []
      : [[DEVICE_INVITE_FILE, `${JSON.stringify(invite.file)}\n`, SECRET_MODE] as [string, string, number]]),
    [DEVICE_CONFIG_FILE, yaml, 0o644],
  ]
  for (const [name, data, mode] of files) {
    await writeFile(join(out, name), data, { flag: 'wx', mode })
    await chmod(join(out, name), mode)
  }
  const i = invite?.invite
  return {
    dir: out,
    fleet: fleet.root.fleet,
    files: files.map(([name, , mode]) => ({ name, mode: mode.toString(8).padStart(4, '0') })),
    invite:
      i === undefined ? null : { id: i.id, tags: i.tags, name: i.name ?? null, uses: i.uses, expires_at: i.expires_at },
    warning:
      i === undefined && !fleet.root.auto_enroll
        ? 'no invite and auto_enroll is off: the device stays pending until `llmesh device approve`'
        : null,
  }
}

/** Runs `llmesh fleet export`. */
export async function runExport(fleetDir: string, o: ExportOptions): Promise<void> {
  const r = await exportDevice(fleetDir, o)
  print(o, r, (x) =>
    [
      `exported fleet ${x.fleet} for one device to ${x.dir} (no operator key):`,
      ...x.files.map((f) => `  ${f.mode} ${f.name}`),
      x.invite === null
        ? '  no invite'
        : `  invite ${x.invite.id}: tags=${x.invite.tags.join(',') || '-'}${x.invite.name === null ? '' : ` name=${x.invite.name}`} uses=${x.invite.uses} expires ${new Date(x.invite.expires_at).toISOString()}`,
      ...(x.warning === null ? [] : [`  ${x.warning}`]),
      `start it: llmesh node start --config ${join(x.dir, DEVICE_CONFIG_FILE)}   (or: sudo ./install.sh --fleet ${x.dir})`,
    ].join('\n'),
  )
}
