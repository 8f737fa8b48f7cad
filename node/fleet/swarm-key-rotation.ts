/**
 * The fleet directory's side of a join-secret rotation (`llmesh fleet rotate-swarm-key`): the
 * epoch of its swarm.key (`swarm-epoch.json`, absent: 0), the new key staged as `swarm.key.next`
 * (0600, written before the rotation is published, so the key is never lost), then put in place:
 * the old key kept as `swarm.key.<old epoch>`, the new one renamed over swarm.key, the epoch file
 * written, the directory fsynced. New devices and invites made from the directory get the new key.
 */
import { open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import * as z from 'zod'
import { syncDir } from '../mesh/message-log.ts'
import { readOptionalJson } from '../mesh/swarm-key-state.ts'
import { SECRET_MODE, SWARM_KEY_FILE } from './constants.ts'
import { FleetError } from './errors.ts'

/** The epoch file of a fleet directory. */
export const SWARM_EPOCH_FILE = 'swarm-epoch.json'
const NEXT_SUFFIX = '.next'

const EpochFile = z.strictObject({
  epoch: z.number().int().nonnegative(),
  key_id: z.string().regex(/^[0-9a-f]{64}$/),
  switch_at: z.number().int().nonnegative(),
})
/** What `swarm-epoch.json` holds. */
export type SwarmEpoch = z.infer<typeof EpochFile>

/** The epoch of the directory's swarm.key (0 when it was never rotated). */
export async function readSwarmEpoch(dir: string): Promise<SwarmEpoch | undefined> {
  const json = await readOptionalJson(join(dir, SWARM_EPOCH_FILE))
  if (json === undefined) return undefined
  const parsed = EpochFile.safeParse(json)
  if (!parsed.success) throw new FleetError('ERR_FLEET_INVALID', `${SWARM_EPOCH_FILE} is not a swarm epoch file`)
  return parsed.data
}

async function writeDurable(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const fh = await open(path, 'w', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Stages the new key file as `swarm.key.next` (durably, mode 0600). */
export async function stageSwarmKey(dir: string, keyFile: Uint8Array): Promise<void> {
  await writeDurable(join(dir, `${SWARM_KEY_FILE}${NEXT_SUFFIX}`), keyFile, SECRET_MODE)
  await syncDir(dir)
}

/** Drops a staged key (its rotation was not published). */
export async function unstageSwarmKey(dir: string): Promise<void> {
  await rm(join(dir, `${SWARM_KEY_FILE}${NEXT_SUFFIX}`), { force: true })
}

/** Puts the staged key in place: old key kept as `swarm.key.<old epoch>`, epoch file written. */
export async function commitSwarmKey(dir: string, epoch: SwarmEpoch, oldEpoch: number): Promise<void> {
  const key = join(dir, SWARM_KEY_FILE)
  await rename(key, `${key}.${oldEpoch}`)
  await rename(`${key}${NEXT_SUFFIX}`, key)
  const tmp = join(dir, `${SWARM_EPOCH_FILE}.tmp`)
  await writeDurable(tmp, `${JSON.stringify(epoch)}\n`, 0o644)
  await rename(tmp, join(dir, SWARM_EPOCH_FILE))
  await syncDir(dir)
}
