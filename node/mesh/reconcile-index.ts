/**
 * The store's messages as reconciliation keys (protocols/reconcile.ts), kept sorted so that a round
 * of anti-entropy builds its set in O(n) with no sort and no hex parsing.
 *
 * How it works: each indexed message becomes an entry (its key, its id's four words, and for a
 * health report the time retention judges it by). New entries wait in `pending`; removed ones are
 * forgotten in `live`. `snapshot` first merges the sorted pending entries into the sorted list
 * (dropping the dead), then keeps the entries inside the health window: O(n + p log p) for p changes.
 */
import { idWords, ReconcileSet, reconcileKey } from '../../protocols/reconcile.ts'
import { typeRank } from './anti-entropy-frames.ts'
import type { StoredMessage } from './types.ts'

interface Entry {
  key: string
  words: [number, number, number, number]
  /** When it stops being offered: a health report's time; others never. */
  time: number
}

const byKey = (a: Entry, b: Entry): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

/** The reconciliation key of a stored message. */
export function keyOf(m: StoredMessage): string {
  return reconcileKey(typeRank(m.type), (m.message as { seq?: number }).seq ?? 0, m.digest)
}

/** The store's messages sorted by reconciliation key. */
export class ReconcileIndex {
  private sorted: Entry[] = []
  private pending: Entry[] = []
  private readonly live = new Map<string, Entry>()
  private dirty = false

  /** Adds a message; `time`: when it stops being offered (a health report's time, else +∞). */
  add(m: StoredMessage, time: number): void {
    const e: Entry = { key: keyOf(m), words: idWords(m.digest), time }
    this.live.set(m.digest, e)
    this.pending.push(e)
    this.dirty = true
  }

  remove(m: StoredMessage): void {
    if (this.live.delete(m.digest)) this.dirty = true
  }

  /** The set to reconcile: every message but health reports older than `since`. */
  snapshot(since: number): ReconcileSet {
    if (this.dirty) this.merge()
    const keys: string[] = []
    const words = new Uint32Array(this.sorted.length * 4)
    for (const e of this.sorted) {
      if (e.time < since) continue
      words.set(e.words, keys.length * 4)
      keys.push(e.key)
    }
    return ReconcileSet.fromSorted(keys, words.subarray(0, keys.length * 4))
  }

  private merge(): void {
    const isLive = (e: Entry): boolean => this.live.get(e.key.slice(13)) === e
    const add = this.pending.filter(isLive).sort(byKey)
    const out: Entry[] = []
    let i = 0
    let j = 0
    while (i < this.sorted.length || j < add.length) {
      const a = this.sorted[i]
      const b = add[j]
      const e = b === undefined || (a !== undefined && a.key < b.key) ? this.sorted[i++] : add[j++]
      if (isLive(e)) out.push(e)
    }
    this.sorted = out
    this.pending = []
    this.dirty = false
  }
}
