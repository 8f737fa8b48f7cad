/**
 * The device's persistent identity: an Ed25519 libp2p key kept in the data directory (mode 0600).
 * Its peer id is the device id everywhere (enrollments, health reports, verdicts).
 */
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { LlmeshError } from '../protocols/errors.ts'
import { IDENTITY_FILE } from './constants.ts'

/** A loaded identity. */
export interface Identity {
  privateKey: PrivateKey
  /** base58btc peer id string (`12D3Koo…`). */
  peerId: string
  /** Whether the key was created by this call. */
  created: boolean
}

/** Loads `<dataDir>/identity.key`, creating a new Ed25519 key (mode 0600) when absent. */
export async function loadOrCreateIdentity(dataDir: string): Promise<Identity> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const file = join(dataDir, IDENTITY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (bytes !== undefined) {
    const st = await stat(file)
    if ((st.mode & 0o077) !== 0) await chmod(file, 0o600)
    let privateKey: PrivateKey
    try {
      privateKey = privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new LlmeshError('ERR_IDENTITY', `cannot read the identity key ${file}`, { cause: err })
    }
    if (privateKey.type !== 'Ed25519') throw new LlmeshError('ERR_IDENTITY', `identity key ${file} is not Ed25519`)
    return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString(), created: false }
  }
  const privateKey = await generateKeyPair('Ed25519')
  await writeFile(file, privateKeyToProtobuf(privateKey), { mode: 0o600, flag: 'wx' })
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString(), created: true }
}
