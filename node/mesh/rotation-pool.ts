/**
 * Pending trust-root rotations: the signed envelopes of root v(current+1) seen so far, grouped by
 * payload, until a threshold of the old AND the new keys is in. Only envelopes that verified
 * against a key of the current root or of the candidate root itself enter (the caller checks),
 * and each key counts once per payload, so a payload's pool holds at most one envelope per key:
 * junk copies cannot fill it and crowd the missing co-signature out.
 *
 * Pools are of two kinds:
 * - authorized: some key of the current root signed the payload. Only a holder of a current key
 *   makes one; at most MAX_AUTHORIZED, the oldest dropped first.
 * - unauthorized: only the candidate's own keys signed it so far (its old-key signature may be on
 *   its way). Anyone can make one (a fresh key signing a root that lists it), so each peer may
 *   hold at most MAX_PER_PEER of them (its oldest dropped first) and all peers MAX_UNAUTHORIZED
 *   (the oldest dropped first). An unauthorized pool turns authorized when an old-key envelope
 *   of its payload arrives; that envelope alone always finds room.
 */
import type { TrustRoot } from '../../protocols/index.ts'
import {
  ROTATION_MAX_AUTHORIZED_POOLS,
  ROTATION_MAX_POOLS_PER_PEER,
  ROTATION_MAX_UNAUTHORIZED_POOLS,
} from './constants.ts'

interface Pool {
  version: number
  /** keyid → the envelope it signed. */
  envelopes: Map<string, Uint8Array>
  authorized: boolean
  /** The peer whose envelope opened the pool (quota owner while unauthorized). */
  owner: string
}

/** Options of the pool (defaults from node/constants.ts). */
export interface RotationPoolInit {
  maxAuthorized?: number
  maxUnauthorized?: number
  maxPerPeer?: number
}

/** Verified rotation envelopes waiting for their co-signatures. */
export class RotationPool {
  private readonly pools = new Map<string, Pool>()
  private readonly maxAuthorized: number
  private readonly maxUnauthorized: number
  private readonly maxPerPeer: number

  constructor(init: RotationPoolInit = {}) {
    this.maxAuthorized = init.maxAuthorized ?? ROTATION_MAX_AUTHORIZED_POOLS
    this.maxUnauthorized = init.maxUnauthorized ?? ROTATION_MAX_UNAUTHORIZED_POOLS
    this.maxPerPeer = init.maxPerPeer ?? ROTATION_MAX_POOLS_PER_PEER
  }

  /**
   * Adds a verified envelope of `root` (payload `payloadDigest`) signed by `keyid`;
   * `byCurrentKey` says whether that key belongs to the current root. Returns the payload's
   * envelopes (one per key).
   */
  add(
    root: TrustRoot,
    payloadDigest: string,
    keyid: string,
    byCurrentKey: boolean,
    bytes: Uint8Array,
    peer: string,
  ): Uint8Array[] {
    let pool = this.pools.get(payloadDigest)
    if (pool === undefined) {
      pool = { version: root.version, envelopes: new Map(), authorized: byCurrentKey, owner: peer }
      this.makeRoom(pool)
      this.pools.set(payloadDigest, pool)
    } else if (byCurrentKey && !pool.authorized) {
      pool.authorized = true
      this.makeRoom(pool, payloadDigest)
    }
    if (!pool.envelopes.has(keyid)) pool.envelopes.set(keyid, bytes)
    return [...pool.envelopes.values()]
  }

  /** Forgets the pools of versions up to `version` (a rotation to it happened). */
  settle(version: number): void {
    for (const [digest, pool] of this.pools) if (pool.version <= version) this.pools.delete(digest)
  }

  /** Forgets one payload's pool (its rotation was refused for good). */
  drop(payloadDigest: string): void {
    this.pools.delete(payloadDigest)
  }

  /** Number of pools, by kind (for tests and /status). */
  size(): { authorized: number; unauthorized: number } {
    let authorized = 0
    for (const p of this.pools.values()) if (p.authorized) authorized++
    return { authorized, unauthorized: this.pools.size - authorized }
  }

  /** Evicts pools so that `pool` (new, or just authorized) fits its kind's quotas. */
  private makeRoom(pool: Pool, self?: string): void {
    const others = [...this.pools].filter(([d]) => d !== self)
    if (pool.authorized) {
      const auth = others.filter(([, p]) => p.authorized)
      for (const [d] of auth.slice(0, Math.max(0, auth.length - this.maxAuthorized + 1))) this.pools.delete(d)
      return
    }
    const mine = others.filter(([, p]) => !p.authorized && p.owner === pool.owner)
    for (const [d] of mine.slice(0, Math.max(0, mine.length - this.maxPerPeer + 1))) this.pools.delete(d)
    const unauth = [...this.pools].filter(([d, p]) => d !== self && !p.authorized)
    for (const [d] of unauth.slice(0, Math.max(0, unauth.length - this.maxUnauthorized + 1))) this.pools.delete(d)
  }
}
