/**
 * Building and ordering join-secret rotations (pure; the clock is passed in). A rotation is an
 * operator message (`SwarmKeyRotation`): the verifier checks its signature and refuses an epoch
 * not above the highest it has seen (rollback key: the fleet). `checkRotation` adds what a device
 * checks before switching: an epoch above the one in force, a switch time within bounds.
 */
import { randomBytes } from 'node:crypto'
import { SCHEMA_VERSION } from '../constants.ts'
import type { SwarmKeyRotation } from '../schemas/swarm-key.ts'
import { SWARM_KEY_FILE_HEADER, SWARM_KEY_MAX_SWITCH_DELAY_MS } from './constants.ts'
import { SwarmKeyError } from './errors.ts'
import { SWARM_KEY_BYTES, sealSwarmKey, swarmKeyId } from './seal.ts'

/** What a new rotation is built from. */
export interface RotationInit {
  fleet: string
  /** The new epoch: above every earlier rotation's (the first rotation is 1). */
  epoch: number
  /** Enrolled, non-revoked devices (and the nodes the operator runs) that get the new key. */
  devices: readonly string[]
  now: number
  /** When every node switches (default: `now`). */
  switchAt?: number
  /** The new key (default: 32 random bytes). */
  key?: Uint8Array
}

/** A fresh rotation message and the new key it carries (to write into the fleet directory). */
export function buildSwarmKeyRotation(init: RotationInit): { rotation: SwarmKeyRotation; key: Uint8Array } {
  const key = init.key ?? new Uint8Array(randomBytes(SWARM_KEY_BYTES))
  const rotation: SwarmKeyRotation = {
    type: 'SwarmKeyRotation',
    v: SCHEMA_VERSION,
    fleet: init.fleet,
    epoch: init.epoch,
    key_id: swarmKeyId(key),
    issued_at: init.now,
    switch_at: init.switchAt ?? init.now,
    recipients: sealSwarmKey(key, { fleet: init.fleet, epoch: init.epoch, devices: init.devices }),
  }
  return { rotation, key }
}

/**
 * Whether a verified rotation may replace the key in force at epoch `current`: throws
 * ERR_STALE_EPOCH for an epoch not above it, ERR_SWARM_KEY for a switch time before its issue
 * time or further ahead than SWARM_KEY_MAX_SWITCH_DELAY_MS, or recipients listed twice.
 */
export function checkRotation(rotation: SwarmKeyRotation, current: number): void {
  if (rotation.epoch <= current) {
    throw new SwarmKeyError('ERR_STALE_EPOCH', `swarm key epoch ${rotation.epoch} is not newer than ${current}`)
  }
  const delay = rotation.switch_at - rotation.issued_at
  if (delay < 0 || delay > SWARM_KEY_MAX_SWITCH_DELAY_MS) {
    throw new SwarmKeyError('ERR_SWARM_KEY', `swarm key epoch ${rotation.epoch} switches ${delay} ms after its issue`)
  }
  if (new Set(rotation.recipients.map((r) => r.device)).size !== rotation.recipients.length) {
    throw new SwarmKeyError('ERR_SWARM_KEY', `swarm key epoch ${rotation.epoch} lists a device twice`)
  }
}

/** The libp2p swarm key file of a 32-byte key (what `preSharedKey({ psk })` takes). */
export function swarmKeyFile(key: Uint8Array): Uint8Array {
  if (key.length !== SWARM_KEY_BYTES)
    throw new SwarmKeyError('ERR_SWARM_KEY', `a swarm key is ${SWARM_KEY_BYTES} bytes`)
  return new Uint8Array(Buffer.from(`${SWARM_KEY_FILE_HEADER}${Buffer.from(key).toString('hex')}`, 'utf8'))
}

/** The 32 key bytes of a libp2p swarm key file (base16 form). Throws ERR_SWARM_KEY otherwise. */
export function swarmKeyOfFile(file: Uint8Array): Uint8Array {
  const text = Buffer.from(file).toString('utf8').trim()
  const hex = text.startsWith(SWARM_KEY_FILE_HEADER) ? text.slice(SWARM_KEY_FILE_HEADER.length).trim() : ''
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new SwarmKeyError('ERR_SWARM_KEY', 'not a base16 libp2p swarm key file')
  return new Uint8Array(Buffer.from(hex, 'hex'))
}
