/** `llmesh fleet rotate-swarm-key` itself (fleet-rotate.ts registers it and loads this module only when it runs). */
import { loadFleet } from '../../node/fleet/index.ts'
import { commitSwarmKey, readSwarmEpoch, stageSwarmKey, unstageSwarmKey } from '../../node/fleet/swarm-key-rotation.ts'
import { parseDuration } from '../../protocols/duration.ts'
import { messageIdOfWire, signOperatorMessage } from '../../protocols/index.ts'
import {
  buildSwarmKeyRotation,
  SWARM_KEY_DEFAULT_SWITCH_DELAY_MS,
  SWARM_KEY_MAX_SWITCH_DELAY_MS,
  swarmKeyFile,
} from '../../protocols/swarm-key/index.ts'
import { callApi, nodeUrl } from '../api-client.ts'
import { CliError, print } from '../output.ts'

/** Options of `llmesh fleet rotate-swarm-key`. */
export interface RotateOptions {
  api?: string
  data?: string
  switchIn?: string
  json?: boolean
}

/** What the command prints. Never the key. */
export interface RotateOut {
  epoch: number
  key_id: string
  switch_at: number
  recipients: string[]
  skipped_revoked: number
  digest: string
}

interface StatusView {
  device: { id: string }
  devices: Array<{ id: string; enrolled: boolean; revoked: boolean }>
  swarm_key?: { epoch?: number }
}

export async function rotate(dir: string, opts: RotateOptions): Promise<void> {
  const fleet = await loadFleet(dir)
  if (fleet.operatorSigner === undefined) throw new CliError(`${dir} holds no operator key`, 'ERR_NO_OPERATOR_KEY')
  const delay = opts.switchIn === undefined ? SWARM_KEY_DEFAULT_SWITCH_DELAY_MS : parseDuration(opts.switchIn)
  if (delay > SWARM_KEY_MAX_SWITCH_DELAY_MS) throw new CliError('--switch-in is at most 7d', 'ERR_INVALID_INPUT')
  const url = await nodeUrl(opts)
  const status = (await callApi(`${url}/status`)) as StatusView
  const revoked = new Set(status.devices.filter((d) => d.revoked).map((d) => d.id))
  const recipients = [
    ...new Set([status.device.id, ...status.devices.filter((d) => d.enrolled && !d.revoked).map((d) => d.id)]),
  ].filter((id) => !revoked.has(id))
  if (recipients.length === 0)
    throw new CliError('the node knows no enrolled device to give the key to', 'ERR_INVALID_INPUT')
  const oldEpoch = Math.max((await readSwarmEpoch(dir))?.epoch ?? 0, status.swarm_key?.epoch ?? 0)
  const now = Date.now()
  const { rotation, key } = buildSwarmKeyRotation({
    fleet: fleet.root.fleet,
    epoch: oldEpoch + 1,
    devices: recipients,
    now,
    switchAt: now + delay,
  })
  const wire = await signOperatorMessage(rotation, fleet.operatorSigner)
  await stageSwarmKey(dir, swarmKeyFile(key))
  try {
    await callApi(`${url}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: wire,
    })
  } catch (err) {
    await unstageSwarmKey(dir)
    throw err
  }
  await commitSwarmKey(dir, { epoch: rotation.epoch, key_id: rotation.key_id, switch_at: rotation.switch_at }, oldEpoch)
  const out: RotateOut = {
    epoch: rotation.epoch,
    key_id: rotation.key_id,
    switch_at: rotation.switch_at,
    recipients,
    skipped_revoked: revoked.size,
    digest: messageIdOfWire(wire),
  }
  print(
    opts,
    out,
    (o) =>
      `swarm key epoch ${o.epoch} sealed to ${o.recipients.length} device(s) (${o.skipped_revoked} revoked left out); ` +
      `every node switches at ${new Date(o.switch_at).toISOString()}; ${dir}/swarm.key is the new key`,
  )
}
