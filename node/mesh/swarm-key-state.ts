/**
 * The join secret a device holds, kept durably in `<data>/swarm-key.json` (mode 0600): the epoch in
 * force, its key, the key before it with the switch time (a node restarted before the switch keeps
 * using the old key until then), and the ids of every key it held before (so it can tell the fleet
 * directory's swarm.key it started from, now superseded, from a newer one the operator gave it).
 *
 * Which key a node starts with (`resolveSwarmKey`):
 * - no state file: the fleet directory's key, epoch 0;
 * - the fleet directory's key is the state's or one it superseded: the state's key (the one
 *   before it while the switch is still ahead);
 * - any other key: the fleet directory's (the operator handed a newer key file to a device that
 *   was offline through a switch), at the state's epoch: the next rotation it is sealed to moves it on.
 * Writes are durable: a temporary file, fsynced, renamed over the state, the directory fsynced.
 */
import { open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import * as z from 'zod'
import { LlmeshError } from '../../protocols/errors.ts'
import { swarmKeyFile, swarmKeyId, swarmKeyOfFile } from '../../protocols/swarm-key/index.ts'
import { syncDir } from './message-log.ts'

/** The state file in a data directory. */
export const SWARM_KEY_STATE_FILE = 'swarm-key.json'
/** Most superseded key ids kept. */
const MAX_SUPERSEDED = 256

const Hex32 = z.string().regex(/^[0-9a-f]{64}$/)
const StateFile = z.strictObject({
  epoch: z.number().int().nonnegative(),
  key: Hex32,
  previous: Hex32.optional(),
  switch_at: z.number().int().nonnegative(),
  superseded: z.array(Hex32).max(MAX_SUPERSEDED),
})
/** What `<data>/swarm-key.json` holds. */
export type SwarmKeyState = z.infer<typeof StateFile>

/** The key a node starts with. */
export interface ResolvedSwarmKey {
  /** Epoch in force (0: the fleet directory's key, never rotated here). */
  epoch: number
  /** The swarm key file bytes to protect connections with now. */
  psk: Uint8Array
  /** A switch still ahead: at `at`, move to `psk`. */
  pending?: { at: number; psk: Uint8Array }
  state?: SwarmKeyState
}

/** A JSON file's parsed content, or undefined when the file does not exist. */
export async function readOptionalJson(file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  return JSON.parse(text)
}

/** Reads the state file (undefined when absent; throws on a corrupt one). */
export async function readSwarmKeyState(dataDir: string): Promise<SwarmKeyState | undefined> {
  const file = join(dataDir, SWARM_KEY_STATE_FILE)
  let json: unknown
  try {
    json = await readOptionalJson(file)
  } catch (err) {
    throw new LlmeshError('ERR_SWARM_KEY_STATE', `cannot read ${file}`, { cause: err })
  }
  if (json === undefined) return undefined
  const parsed = StateFile.safeParse(json)
  if (!parsed.success) {
    throw new LlmeshError(
      'ERR_SWARM_KEY_STATE',
      `${file} is not a swarm key state: remove it to start from the fleet directory's swarm.key`,
    )
  }
  return parsed.data
}

/** Writes the state file durably. */
export async function writeSwarmKeyState(dataDir: string, state: SwarmKeyState): Promise<void> {
  const file = join(dataDir, SWARM_KEY_STATE_FILE)
  const tmp = `${file}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(`${JSON.stringify(StateFile.parse(state))}\n`)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
  await syncDir(dataDir)
}

/**
 * The state after a rotation to `key` at `epoch`: `inForce` is the key file connections use now,
 * `pending` a key received but not switched to yet (superseded too).
 */
export function nextState(
  inForce: Uint8Array,
  pending: Uint8Array | undefined,
  rotation: { key: Uint8Array; epoch: number; switchAt: number },
  old?: SwarmKeyState,
): SwarmKeyState {
  const cur = swarmKeyOfFile(inForce)
  const ids = [swarmKeyId(cur), ...(pending === undefined ? [] : [swarmKeyId(swarmKeyOfFile(pending))])]
  return {
    epoch: rotation.epoch,
    key: Buffer.from(rotation.key).toString('hex'),
    previous: Buffer.from(cur).toString('hex'),
    switch_at: rotation.switchAt,
    superseded: [...new Set([...(old?.superseded ?? []), ...ids])].slice(-MAX_SUPERSEDED),
  }
}

const fileOf = (hex: string): Uint8Array => swarmKeyFile(new Uint8Array(Buffer.from(hex, 'hex')))

/** The key to start with, from the fleet directory's key file and the data directory's state. */
export async function resolveSwarmKey(dataDir: string, fleetPsk: Uint8Array, now: number): Promise<ResolvedSwarmKey> {
  const state = await readSwarmKeyState(dataDir)
  if (state === undefined) return { epoch: 0, psk: fleetPsk }
  const fleetId = swarmKeyId(swarmKeyOfFile(fleetPsk))
  const known = fleetId === swarmKeyId(Buffer.from(state.key, 'hex')) || state.superseded.includes(fleetId)
  if (!known) return { epoch: state.epoch, psk: fleetPsk, state }
  if (state.previous !== undefined && now < state.switch_at) {
    return {
      epoch: state.epoch,
      psk: fileOf(state.previous),
      pending: { at: state.switch_at, psk: fileOf(state.key) },
      state,
    }
  }
  return { epoch: state.epoch, psk: fileOf(state.key), state }
}
