/**
 * What store-flood.test.ts reads of a node in the bed: its store, heap and refusals (from
 * /status and /metrics), and what its message log holds of a flooder's reports.
 */
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { LanNode } from './helpers.ts'
import type { TestBed } from './netns.ts'
import { statusOf } from './rollout-bed.ts'

export const MIB = 1024 * 1024

/** What the test reads of a node's store, heap and refusals. */
export interface Figures {
  messages: number
  wire: number
  log: number
  heap: number
  /** Event loop lag (p99, s) and CPU time (s) of the process, for the diagnostics. */
  lag: number
  cpu: number
  quota: number
  rejections: Record<string, number>
  /** Gossip validator outcomes (rejected: the sender lost score). */
  gossip: Record<string, number>
}

/** What a node's message log holds of the enrolled flooder's reports. */
export interface Held {
  reports: number
  bytes: number
  /** Lines naming the unenrolled flooder (must be none). */
  unenrolled: number
}

type StoreSection = { messages: number; wire_bytes: number | null }

/** Sum of a metric's samples whose line includes `filter`. */
export function metric(text: string, name: string, filter = ''): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (!line.includes(filter)) continue
    sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

/** A node's /metrics text, fetched from inside its namespace. */
export async function metricsAt(bed: TestBed, n: LanNode): Promise<string> {
  return bed.get(n.host, `${n.info.api}/metrics`)
}

/** A node's store, heap and refusal figures now. */
export async function figuresAt(bed: TestBed, n: LanNode): Promise<Figures> {
  const [s, m] = await Promise.all([statusOf(bed, n), metricsAt(bed, n)])
  const store = s.store as StoreSection
  const rejections: Record<string, number> = {}
  for (const code of ['ERR_QUOTA', 'ERR_NOT_ENROLLED', 'ERR_BAD_SIGNATURE', 'ERR_OVERSIZED', 'ERR_FUTURE']) {
    rejections[code] = metric(m, 'llmesh_ingest_rejections_total', `code="${code}"`)
  }
  return {
    messages: store.messages,
    wire: store.wire_bytes ?? Number.NaN,
    log: (await stat(join(n.dataDir, 'messages.jsonl'))).size,
    heap: metric(m, 'nodejs_heap_size_used_bytes'),
    lag: metric(m, 'nodejs_eventloop_lag_p99_seconds'),
    cpu: metric(m, 'process_cpu_seconds_total'),
    quota: metric(m, 'llmesh_store_quota_refusals_total'),
    rejections,
    gossip: Object.fromEntries(
      ['accepted', 'ignored', 'rejected'].map((o) => [o, metric(m, 'llmesh_gossip_messages_total', `outcome="${o}"`)]),
    ),
  }
}

/** One line of figures for the diagnostics. */
export function showFigures(f: Figures): string {
  return `messages ${f.messages}, wire ${(f.wire / MIB).toFixed(2)} MiB, log ${(f.log / MIB).toFixed(2)} MiB, heap ${(f.heap / MIB).toFixed(1)} MiB, lag p99 ${f.lag.toFixed(3)} s, cpu ${f.cpu.toFixed(1)} s, quota refusals ${f.quota}, rejections ${JSON.stringify(f.rejections)}, gossip ${JSON.stringify(f.gossip)}`
}

/** What a node's message log holds of `flooder`'s health reports, and how many lines name `stranger`. */
export async function reportsHeldAt(n: LanNode, flooder: string, stranger: string): Promise<Held> {
  const lines = (await readFile(join(n.dataDir, 'messages.jsonl'), 'utf8')).split('\n')
  const reports = new Map<string, number>()
  for (const l of lines) {
    if (!l.startsWith('{') || !l.includes(flooder)) continue
    const rec = JSON.parse(l) as { d: string; m?: { type: string; device: string }; w?: string }
    if (rec.m?.type === 'HealthReport' && rec.m.device === flooder && rec.w !== undefined) {
      reports.set(rec.d, Buffer.from(rec.w, 'base64').byteLength)
    }
  }
  return {
    reports: reports.size,
    bytes: [...reports.values()].reduce((x, y) => x + y, 0),
    unenrolled: lines.filter((l) => l.includes(stranger)).length,
  }
}
