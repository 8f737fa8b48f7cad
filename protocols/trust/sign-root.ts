/**
 * Producing trust roots: the first root of a fleet (self-signed by its keys) and the next root
 * of a rotation (to be signed by a threshold of the current keys and of the new keys).
 */
import { SCHEMA_VERSION } from '../constants.ts'
import { InvalidInputError } from '../errors.ts'
import type { OperatorKey, TrustRoot } from '../schemas/index.ts'
import { signOperatorMessage } from '../signing/operator.ts'
import type { OperatorSigner } from '../signing/operator-key.ts'

/** Options of a new trust root. */
export interface TrustRootInit {
  fleet: string
  keys: OperatorKey[]
  /** Creation time, ms. */
  now: number
  threshold?: number
  /** Expiry time, ms; none by default. */
  expiresAt?: number
  /** Enroll every device that holds the join secret (labs only); default false. */
  autoEnroll?: boolean
}

/** Version 1 of a fleet's trust root. */
export function firstTrustRoot(init: TrustRootInit): TrustRoot {
  return {
    type: 'TrustRoot',
    v: SCHEMA_VERSION,
    fleet: init.fleet,
    version: 1,
    keys: init.keys,
    threshold: init.threshold ?? 1,
    created_at: init.now,
    ...(init.expiresAt === undefined ? {} : { expires_at: init.expiresAt }),
    auto_enroll: init.autoEnroll ?? false,
  }
}

/** The root that follows `current` (version + 1) with new keys; other settings carry over. */
export function nextTrustRoot(
  current: TrustRoot,
  keys: OperatorKey[],
  now: number,
  over: { threshold?: number; expiresAt?: number } = {},
): TrustRoot {
  const { expires_at: _old, ...rest } = current
  return {
    ...rest,
    version: current.version + 1,
    keys,
    threshold: over.threshold ?? Math.min(current.threshold, keys.length),
    created_at: now,
    ...(over.expiresAt === undefined ? {} : { expires_at: over.expiresAt }),
  }
}

/** Signs a root with each signer (one envelope per key); returns the wire envelopes. */
export async function signTrustRoot(root: TrustRoot, signers: readonly OperatorSigner[]): Promise<Uint8Array[]> {
  if (signers.length === 0) throw new InvalidInputError('a trust root needs at least one signer')
  const ids = new Set(signers.map((s) => s.keyid))
  if (ids.size !== signers.length) throw new InvalidInputError('the same key signs twice')
  return Promise.all(signers.map((s) => signOperatorMessage(root, s)))
}
