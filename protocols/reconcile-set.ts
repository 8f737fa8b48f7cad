/**
 * One side's set for range-based reconciliation (protocols/reconcile.ts): the keys of its messages
 * in order, with prefix XORs of their ids so that any range's fingerprint costs two binary searches
 * and one sha256. Pure; its keys and fingerprints are protocol (docs/protocol.md, "Anti-entropy").
 */
import { createHash } from 'node:crypto'

/** Largest sequence number a key can hold (12 hex digits); larger ones are clamped. */
const MAX_SEQ = 2 ** 48 - 1

/** The key of a message: its type's rank (0–15), its sequence number, its id. */
export function reconcileKey(rank: number, seq: number, id: string): string {
  const s = Number.isSafeInteger(seq) ? Math.min(Math.max(seq, 0), MAX_SEQ) : 0
  return (rank & 15).toString(16) + s.toString(16).padStart(12, '0') + id
}

/** An item to reconcile: its key (`reconcileKey`) and its id. */
export interface ReconcileItem {
  key: string
  id: string
}

/** The four big-endian 32-bit words of an id's first 16 bytes: what fingerprints XOR. */
export function idWords(id: string): [number, number, number, number] {
  const b = Buffer.from(id.slice(0, 32), 'hex')
  return [b.readUInt32BE(0), b.readUInt32BE(4), b.readUInt32BE(8), b.readUInt32BE(12)]
}

/** Offset of the id inside a key. */
const ID_AT = 13

/**
 * One side's set: keys in order, with prefix XORs of their ids for O(1) range fingerprints. Build
 * it from sorted keys and their id words (`fromSorted`, what the node keeps), or from any items.
 */
export class ReconcileSet {
  readonly keys: string[]
  private readonly xor: Uint32Array

  /** From items in any order. */
  constructor(items: Iterable<ReconcileItem>) {
    const keys = [...items].map((x) => x.key).sort()
    const words = new Uint32Array(keys.length * 4)
    for (let k = 0; k < keys.length; k++) words.set(idWords(keys[k].slice(ID_AT)), k * 4)
    this.keys = keys
    this.xor = prefixXor(words, keys.length)
  }

  /** From keys sorted ascending (no duplicates) and their ids' words (`idWords`, 4 per key). */
  static fromSorted(keys: string[], words: Uint32Array): ReconcileSet {
    const set = Object.create(ReconcileSet.prototype) as { keys: string[]; xor: Uint32Array }
    set.keys = keys
    set.xor = prefixXor(words, keys.length)
    return set as unknown as ReconcileSet
  }

  get size(): number {
    return this.keys.length
  }

  /** The id at index `k`. */
  id(k: number): string {
    return this.keys[k].slice(ID_AT)
  }

  /** The ids at indexes [lo, hi). */
  ids(lo: number, hi: number): string[] {
    const out: string[] = []
    for (let k = lo; k < hi; k++) out.push(this.id(k))
    return out
  }

  /** Index of the first key ≥ bound (`undefined`: the end). */
  index(bound: string | undefined): number {
    if (bound === undefined) return this.keys.length
    let lo = 0
    let hi = this.keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.keys[mid] < bound) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Fingerprint of the items at indexes [lo, hi). */
  fingerprint(lo: number, hi: number): string {
    const buf = Buffer.alloc(20)
    for (let w = 0; w < 4; w++) buf.writeUInt32BE((this.xor[hi * 4 + w] ^ this.xor[lo * 4 + w]) >>> 0, w * 4)
    buf.writeUInt32BE(hi - lo, 16)
    return createHash('sha256').update(buf).digest('hex').slice(0, 32)
  }
}

function prefixXor(words: Uint32Array, n: number): Uint32Array {
  const xor = new Uint32Array((n + 1) * 4)
  for (let k = 0; k < n * 4; k++) xor[k + 4] = xor[k] ^ words[k]
  return xor
}
