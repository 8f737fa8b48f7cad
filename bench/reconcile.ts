/**
 * What one anti-entropy round costs between two stores of n messages that differ by d: version 2
 * (range-based reconciliation, protocols/reconcile.ts) against version 1 (the whole id list, cut at
 * 20,000) as the baseline, in the same run. Both run the protocol's real code on the node's real
 * structures (the store's sorted ReconcileIndex, `decodeFrame` with its pre-parse checks, the
 * send order and bounds of a round), both sides in this process, without the libp2p stream: the
 * figures are what goes on the wire, not what the network adds.
 *
 *   node bench/reconcile.ts [--sizes 100000,200000] [--diffs 0,10,1000] [--message-bytes 1200]
 *
 * Prints a markdown table: control bytes, messages sent and how many the peer already held, total
 * bytes (control + messages), differences resolved, sequential legs (one-way frames in sequence; a
 * round trip is two), CPU time of both sides (building the sets, encoding, decoding, reconciling).
 */
import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'
import { CountFrame, HaveFrame, order, WantFrame } from '../node/mesh/anti-entropy-frames.ts'
import { ReconcileIndex } from '../node/mesh/reconcile-index.ts'
import type { StoredMessage } from '../node/mesh/types.ts'
import { ANTI_ENTROPY_MAX_DIGESTS, ANTI_ENTROPY_MAX_MESSAGES, decodeFrame } from '../protocols/anti-entropy.ts'
import { Initiator, respond } from '../protocols/reconcile.ts'
import { NextFrame, ReplyFrame } from '../protocols/reconcile-frames.ts'

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100000,200000' },
    diffs: { type: 'string', default: '0,10,1000' },
    'message-bytes': { type: 'string', default: '1200' },
  },
})
const SIZES = values.sizes.split(',').map(Number)
const DIFFS = values.diffs.split(',').map(Number)
const MSG_BYTES = Number(values['message-bytes'])
const enc = new TextEncoder()

const TYPES = ['TrustRoot', 'ReleaseManifest', 'DeviceEnrollment', 'OperatorCommand', 'Verdict'] as const
let counter = 0
/** A stored message stand-in: 90 % health reports, the rest spread over the other types. */
function message(now: number): StoredMessage {
  const n = counter++
  const type = n % 10 === 0 ? TYPES[(n / 10) % TYPES.length] : 'HealthReport'
  const digest = createHash('sha256').update(`m${n}`).digest('hex')
  const message = { type, seq: n % 1000, window: { start: now - 60_000, end: now } }
  return { digest, type, message, receivedAt: now - (n % 1000), bytes: new Uint8Array(MSG_BYTES) } as never
}

/** One side: its messages by id (arrival order, as the store's map) and its sorted index. */
class Side {
  readonly byDigest = new Map<string, StoredMessage>()
  readonly index = new ReconcileIndex()
  add(m: StoredMessage): void {
    this.byDigest.set(m.digest, m)
    this.index.add(m, m.type === 'HealthReport' ? m.receivedAt : Number.POSITIVE_INFINITY)
  }
  /** MessageStore.syncDigests: every id, health reports inside the window. */
  digests(since: number): string[] {
    const out: string[] = []
    for (const m of this.byDigest.values()) {
      if (m.type === 'HealthReport' && m.receivedAt < since) continue
      out.push(m.digest)
    }
    return out
  }
  /** anti-entropy's pick: dependencies first, at most 2,000 messages and 64 MiB. */
  pick(ids: Iterable<string>): StoredMessage[] {
    const msgs = [...ids].flatMap((d) => this.byDigest.get(d) ?? []).sort(order)
    const out: StoredMessage[] = []
    let bytes = 0
    for (const m of msgs) {
      if (out.length >= ANTI_ENTROPY_MAX_MESSAGES || bytes + m.bytes.byteLength > 64 * 1024 * 1024) break
      out.push(m)
      bytes += m.bytes.byteLength
    }
    return out
  }
}

interface Figures {
  control: number
  sent: number
  redundant: number
  resolved: number
  legs: number
  cpuMs: number
}

/** Sends a control frame: its bytes, decoded on the other side as the node does. */
function wire<T>(f: Figures, value: unknown, schema: Parameters<typeof decodeFrame<T>>[1]): T {
  const bytes = enc.encode(JSON.stringify(value))
  f.control += bytes.byteLength
  f.legs++
  const r = decodeFrame(bytes, schema)
  if (!r.ok) throw r.error
  return r.value
}

/** Messages sent to `to`: each one it already held is wasted. */
function transfer(f: Figures, to: Side, msgs: StoredMessage[]): void {
  for (const m of msgs) {
    f.sent++
    if (to.byDigest.has(m.digest)) f.redundant++
    else f.resolved++
  }
}

function cpu<T>(f: Figures, fn: () => T): T {
  const t = process.cpuUsage()
  const out = fn()
  const d = process.cpuUsage(t)
  f.cpuMs += (d.user + d.system) / 1000
  return out
}

/** Version 1: anti-entropy-rounds.ts initiateV1/respondV1. */
function roundV1(a: Side, b: Side, since: number): Figures {
  const f: Figures = { control: 0, sent: 0, redundant: 0, resolved: 0, legs: 0, cpuMs: 0 }
  cpu(f, () => {
    const have = wire(f, { have: a.digests(since).slice(0, ANTI_ENTROPY_MAX_DIGESTS) }, HaveFrame).have
    const theirs = new Set(have)
    const want = have.filter((d) => !b.byDigest.has(d))
    const missing = b.pick(b.digests(since).filter((d) => !theirs.has(d)))
    const answer = wire(f, { want, count: missing.length }, WantFrame)
    transfer(f, a, missing)
    const msgs = a.pick(answer.want.filter((d) => a.byDigest.has(d)))
    wire(f, { count: msgs.length }, CountFrame)
    transfer(f, b, msgs)
  })
  return f
}

/** Version 2: anti-entropy-rounds.ts initiateV2/respondV2. */
function roundV2(a: Side, b: Side, since: number): Figures {
  const f: Figures = { control: 0, sent: 0, redundant: 0, resolved: 0, legs: 0, cpuMs: 0 }
  cpu(f, () => {
    const ini = new Initiator(a.index.snapshot(since), ANTI_ENTROPY_MAX_MESSAGES)
    let next = wire(f, { ranges: ini.first() }, NextFrame)
    const set = b.index.snapshot(since)
    while ('ranges' in next) {
      const reply = wire(f, { ranges: respond(set, next.ranges, (d) => !b.byDigest.has(d)) }, ReplyFrame)
      const q = ini.next(reply.ranges)
      next =
        q === undefined
          ? wire(
              f,
              { want: [...ini.need].filter((d) => !a.byDigest.has(d)).slice(0, 2000), offer: [...ini.give] },
              NextFrame,
            )
          : wire(f, { ranges: q }, NextFrame)
    }
    const offer = next
    const msgs = b.pick(offer.want.filter((d) => b.byDigest.has(d)))
    const answer = wire(
      f,
      { want: offer.offer.filter((d) => !b.byDigest.has(d)).slice(0, 2000), count: msgs.length },
      WantFrame,
    )
    transfer(f, a, msgs)
    const back = a.pick(answer.want.filter((d) => a.byDigest.has(d)))
    wire(f, { count: back.length }, CountFrame)
    transfer(f, b, back)
  })
  return f
}

const now = Date.now()
const since = now - 60 * 60 * 1000
const kib = (b: number) => (b < 10_240 ? `${b} B` : `${(b / 1024).toFixed(0)} KiB`)
console.log(`two stores of n messages, d differences (half only on each side); messages of ${MSG_BYTES} B\n`)
console.log(
  '| n | d | version | control bytes | messages sent | of which already held | total bytes | differences resolved | legs | CPU ms |',
)
console.log('|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|')
for (const n of SIZES) {
  for (const d of DIFFS) {
    const a = new Side()
    const b = new Side()
    for (let i = 0; i < n; i++) {
      const m = message(now)
      a.add(m)
      b.add(m)
    }
    for (let i = 0; i < d / 2; i++) a.add(message(now))
    for (let i = 0; i < d - Math.floor(d / 2); i++) b.add(message(now))
    // the index merge after a load is the store's work, not the round's: done once, as a node does
    a.index.snapshot(since)
    b.index.snapshot(since)
    for (const [name, run] of [
      ['1 (baseline)', roundV1],
      ['2', roundV2],
    ] as const) {
      const f = run(a, b, since)
      const total = kib(f.control + f.sent * MSG_BYTES)
      const row = [
        n,
        d,
        name,
        kib(f.control),
        f.sent,
        f.redundant,
        total,
        `${f.resolved} / ${d}`,
        f.legs,
        f.cpuMs.toFixed(0),
      ]
      console.log(`| ${row.join(' | ')} |`)
    }
  }
}
