/** `llmesh device invite` itself (device-invite.ts registers it and loads this module only when it runs). */
import { writeFile } from 'node:fs/promises'
import { loadFleet } from '../../node/fleet/index.ts'
import { parseDuration } from '../../protocols/duration.ts'
import { createInvite, DEFAULT_INVITE_TTL_MS, type InviteFile } from '../../protocols/membership/index.ts'
import type { DeviceInvite } from '../../protocols/schemas/index.ts'
import { parseTags } from '../../seed/devices.ts'
import { callApi, nodeUrl } from '../api-client.ts'
import { CliError, type OutputOptions, print } from '../output.ts'

/** Options of `llmesh device invite`. */
export interface InviteOptions extends OutputOptions {
  api?: string
  data?: string
  fleet?: string
  tags?: string
  name?: string
  ttl?: string
  uses?: string
  out: string
}

export async function invite(opts: InviteOptions): Promise<void> {
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
