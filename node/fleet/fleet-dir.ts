/**
 * The fleet directory on disk:
 *   trust-root.json   public: the current TrustRoot and its signed chain since v1
 *   operator.key      PKCS8 PEM of the operator signing key (0600); absent on devices
 *   operator.key.<n>  the key of root version n, kept after a rotation (0600)
 *   swarm.key         the libp2p private-network key, the fleet's join secret (0600)
 * `initFleet` refuses to touch a directory that already holds any of these files.
 */
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKey } from '@libp2p/pnet'
import { InvalidInputError } from '../../protocols/errors.ts'
import { FleetId, type TrustRoot } from '../../protocols/schemas/index.ts'
import {
  createOperatorSigner,
  generateOperatorKey,
  type OperatorKeyAlg,
  type OperatorSigner,
} from '../../protocols/signing/operator-key.ts'
import { firstTrustRoot, nextTrustRoot, signTrustRoot } from '../../protocols/trust/sign-root.ts'
import {
  DEFAULT_FLEET_ID,
  OPERATOR_KEY_FILE,
  SECRET_MODE,
  SWARM_KEY_FILE,
  SWARM_KEY_LENGTH,
  TRUST_ROOT_FILE,
} from './constants.ts'
import { FleetError } from './errors.ts'
import { chainOf, readTrustFile, trustFileJson, verifyTrustFile } from './trust-file.ts'

/** A loaded fleet directory. */
export interface Fleet {
  dir: string
  /** The verified current trust root. */
  root: TrustRoot
  /** Signed envelopes of every root version since v1 (see trust-file.ts). */
  chain: Uint8Array[][]
  /** Present when the directory holds the operator key (operator machines only). */
  operatorSigner?: OperatorSigner
  /** The libp2p pnet key file's bytes (pass to `preSharedKey({ psk })`). */
  swarmKey: Uint8Array
}

/** Options of `initFleet`. */
export interface FleetInit {
  fleetId?: string
  alg?: OperatorKeyAlg
  /** Creation time, ms; defaults to now. */
  now?: number
  /** Trust root lifetime in ms; none by default. */
  expiresInMs?: number
  /**
   * Enroll every device that holds the join secret, with the tags it declares (labs only: anyone
   * with `swarm.key` then votes in rollouts). Default false: devices join with an invite.
   */
  autoEnroll?: boolean
}

async function writeNew(path: string, data: string | Uint8Array, mode?: number): Promise<void> {
  try {
    await writeFile(path, data, { flag: 'wx', mode: mode ?? 0o644 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new FleetError('ERR_FLEET_EXISTS', `${path} already exists: refusing to overwrite a fleet`)
    }
    throw err
  }
  if (mode !== undefined) await chmod(path, mode)
}

async function exists(path: string): Promise<boolean> {
  try {
    await readFile(path)
    return true
  } catch {
    return false
  }
}

/** Creates a fleet in `dir` (made if missing). Throws FleetError ERR_FLEET_EXISTS if one is there. */
export async function initFleet(dir: string, init: FleetInit = {}): Promise<Fleet> {
  const fleet = init.fleetId ?? DEFAULT_FLEET_ID
  if (!FleetId.safeParse(fleet).success)
    throw new InvalidInputError(`invalid fleet id ${JSON.stringify(fleet)} (a-z, 0-9, -; 3-63 chars)`)
  await mkdir(dir, { recursive: true })
  for (const f of [TRUST_ROOT_FILE, OPERATOR_KEY_FILE, SWARM_KEY_FILE]) {
    if (await exists(join(dir, f)))
      throw new FleetError('ERR_FLEET_EXISTS', `${join(dir, f)} already exists: refusing to overwrite a fleet`)
  }
  const now = init.now ?? Date.now()
  const key = generateOperatorKey(init.alg)
  const signer = createOperatorSigner(key.privateKeyPem)
  const root = firstTrustRoot({
    fleet,
    keys: [key.key],
    now,
    ...(init.expiresInMs === undefined ? {} : { expiresAt: now + init.expiresInMs }),
    autoEnroll: init.autoEnroll === true,
  })
  const chain = [await signTrustRoot(root, [signer])]
  const swarmKey = new Uint8Array(SWARM_KEY_LENGTH)
  generateKey(swarmKey)
  // secrets first: a half-written fleet never has a public root without its key
  await writeNew(join(dir, OPERATOR_KEY_FILE), key.privateKeyPem, SECRET_MODE)
  await writeNew(join(dir, SWARM_KEY_FILE), swarmKey, SECRET_MODE)
  await writeNew(join(dir, TRUST_ROOT_FILE), trustFileJson(root, chain))
  return { dir, root, chain, operatorSigner: signer, swarmKey }
}

/** Loads and verifies a fleet directory. Throws FleetError with a clear reason. */
export async function loadFleet(dir: string, opts: { now?: number } = {}): Promise<Fleet> {
  const file = await readTrustFile(join(dir, TRUST_ROOT_FILE))
  let chain: Uint8Array[][]
  try {
    chain = chainOf(file)
  } catch (err) {
    throw new FleetError('ERR_FLEET_INVALID', `${TRUST_ROOT_FILE} holds invalid base64`, { cause: err })
  }
  const root = verifyTrustFile(file, opts.now ?? Date.now())
  let swarmKey: Uint8Array
  try {
    swarmKey = new Uint8Array(await readFile(join(dir, SWARM_KEY_FILE)))
  } catch (err) {
    throw new FleetError('ERR_FLEET_MISSING', `cannot read ${join(dir, SWARM_KEY_FILE)}: ${(err as Error).message}`)
  }
  if (!Buffer.from(swarmKey).toString('utf8').startsWith('/key/swarm/psk/1.0.0/')) {
    throw new FleetError('ERR_FLEET_INVALID', `${SWARM_KEY_FILE} is not a libp2p swarm key`)
  }
  const fleet: Fleet = { dir, root, chain, swarmKey }
  let pem: string | undefined
  try {
    pem = await readFile(join(dir, OPERATOR_KEY_FILE), 'utf8')
  } catch {
    pem = undefined // a device's copy of the fleet has no operator key
  }
  if (pem !== undefined) {
    let signer: OperatorSigner
    try {
      signer = createOperatorSigner(pem)
    } catch (err) {
      throw new FleetError('ERR_FLEET_INVALID', `${OPERATOR_KEY_FILE}: ${(err as Error).message}`)
    }
    if (!root.keys.some((k) => k.keyid === signer.keyid)) {
      throw new FleetError('ERR_FLEET_INVALID', `${OPERATOR_KEY_FILE} is not a key of trust root v${root.version}`)
    }
    fleet.operatorSigner = signer
  }
  return fleet
}

/**
 * Rotates the operator key: a new key, root version + 1 signed by the old and the new key, the
 * old key kept as `operator.key.<old version>`. Needs the operator key in `dir`.
 */
export async function rotateFleetKey(dir: string, opts: { alg?: OperatorKeyAlg; now?: number } = {}): Promise<Fleet> {
  const now = opts.now ?? Date.now()
  const fleet = await loadFleet(dir, { now })
  if (fleet.operatorSigner === undefined) throw new FleetError('ERR_FLEET_MISSING', `no ${OPERATOR_KEY_FILE} in ${dir}`)
  if (fleet.root.threshold > 1) {
    throw new FleetError(
      'ERR_FLEET_INVALID',
      `root v${fleet.root.version} needs ${fleet.root.threshold} keys to rotate`,
    )
  }
  const key = generateOperatorKey(opts.alg ?? fleet.operatorSigner.alg)
  const signer = createOperatorSigner(key.privateKeyPem)
  const root = nextTrustRoot(fleet.root, [key.key], now, { threshold: 1 })
  const chain = [...fleet.chain, await signTrustRoot(root, [fleet.operatorSigner, signer])]
  const keyPath = join(dir, OPERATOR_KEY_FILE)
  await rename(keyPath, `${keyPath}.${fleet.root.version}`)
  await writeNew(keyPath, key.privateKeyPem, SECRET_MODE)
  const tmp = join(dir, `${TRUST_ROOT_FILE}.tmp`)
  await writeFile(tmp, trustFileJson(root, chain))
  await rename(tmp, join(dir, TRUST_ROOT_FILE))
  return { dir, root, chain, operatorSigner: signer, swarmKey: fleet.swarmKey }
}
