/**
 * Importing a fleet report (protocols/fleet-report.ts) on any node, typically the operator's seed
 * at head office. The stream is hostile: the head is at most MAX_REPORT_INDEX_BYTES and must be a
 * report index of this fleet; at most as many frames as the index lists (≤ MAX_REPORT_MESSAGES),
 * each named by a file the index lists, once, at most MAX_REPORT_MESSAGE_BYTES, all together at
 * most MAX_REPORT_BYTES. A stream that breaks these is refused as a whole (ReportError); what was
 * imported before stays (each message stands on its own signature).
 *
 * Each message is judged alone: its bytes must hash to its file name (else ERR_REPORT_DIGEST),
 * then it goes through the node's ingest (`ingest`: the verifier and store gossip and
 * anti-entropy use; nothing in the index is trusted). A refused message is counted and listed
 * (the first MAX_LISTED_REFUSALS) and the rest are imported. A refusal that a later message may
 * lift (a report whose signer's enrollment comes later in the stream) is retried once the stream
 * ended, until a pass makes no progress; the retry buffer is bounded (MAX_RETRY_BYTES).
 */
import { createHash } from 'node:crypto'
import {
  MAX_REPORT_BYTES,
  MAX_REPORT_INDEX_BYTES,
  MAX_REPORT_MESSAGE_BYTES,
  messageFile,
  parseReportIndex,
  REPORT_FRAME_HEADER,
  REPORT_INDEX_FILE,
  type ReportCode,
  ReportError,
} from '../../protocols/fleet-report.ts'
import { BundleError } from '../../protocols/release-bundle.ts'
import { ByteReader } from '../install/byte-reader.ts'
import type { IngestResult } from '../mesh/ingest.ts'

/** Refusals listed in an import's answer (all are counted). */
export const MAX_LISTED_REFUSALS = 50
/** Bytes of messages held for a retry (refused for a reason a later message may lift). */
export const MAX_RETRY_BYTES = 64 * 1024 * 1024
/** Refusals that a later message of the same report may lift. */
const RETRY_CODES: ReadonlySet<string> = new Set(['ERR_NOT_ENROLLED', 'ERR_UNKNOWN_SIGNER', 'ERR_THRESHOLD'])
/** Message types a device signs. */
const DEVICE_TYPES: ReadonlySet<string> = new Set(['HealthReport', 'Verdict', 'InviteClaim'])

/** What importing uses. */
export interface ReportImportDeps {
  /** The node's ingest: verify, then store (no gossip: anti-entropy spreads it on this LAN). */
  ingest: (bytes: Uint8Array) => Promise<IngestResult>
  /** This node's fleet: another fleet's report is refused whole. */
  fleet: string
}

/** One message refused. */
export interface ReportRefusal {
  file: string
  code: string
  reason: string
}

/** What an import did. */
export interface ReportImportResult {
  fleet: string
  /** The site the report declares (a label from its unsigned index, null when none). */
  site: string | null
  exported_by: string
  exported_at: number
  /** Messages read from the stream. */
  messages: number
  accepted: number
  /** Already held, or not kept by the store's retention rules (e.g. a health report past the retention). */
  duplicate: number
  rejected: number
  /** Messages accepted, by type. */
  by_type: Record<string, number>
  /** Devices whose signed messages (reports, verdicts, claims) were accepted. */
  devices: string[]
  refused: ReportRefusal[]
}

/** Verifies and stores the messages of a report stream. See the header. */
export async function importReport(
  body: AsyncIterable<Uint8Array>,
  deps: ReportImportDeps,
  onProgress?: (messages: number) => void,
): Promise<ReportImportResult> {
  const input = new ByteReader(body)
  const exactly = async (n: number, file: string): Promise<Buffer> => {
    try {
      return await input.exactly(n, file)
    } catch (err) {
      if (err instanceof BundleError) throw new ReportError('ERR_REPORT_FORMAT', file, 'truncated', { cause: err })
      throw err
    }
  }
  const headLen = (await exactly(4, REPORT_INDEX_FILE)).readUInt32BE(0)
  if (headLen > MAX_REPORT_INDEX_BYTES) fail('ERR_REPORT_TOO_LARGE', REPORT_INDEX_FILE, `${headLen} bytes`)
  const index = parseReportIndex(await exactly(headLen, REPORT_INDEX_FILE))
  if (index.fleet !== deps.fleet)
    fail('ERR_REPORT_FLEET', REPORT_INDEX_FILE, `a report of fleet ${index.fleet}, this node is of ${deps.fleet}`)
  const listed = new Set(index.messages.map((m) => m.file))
  const out: ReportImportResult = {
    fleet: index.fleet,
    site: index.site ?? null,
    exported_by: index.exported_by,
    exported_at: index.exported_at,
    messages: 0,
    accepted: 0,
    duplicate: 0,
    rejected: 0,
    by_type: {},
    devices: [],
    refused: [],
  }
  const devices = new Set<string>()
  const refuse = (file: string, code: string, reason: string) => {
    out.rejected++
    if (out.refused.length < MAX_LISTED_REFUSALS) out.refused.push({ file, code, reason })
  }
  const retry: { file: string; bytes: Buffer }[] = []
  let retryBytes = 0
  /** Counts an ingest's outcome; false when the message waits for a retry. */
  const tally = (file: string, bytes: Buffer, res: IngestResult, last: boolean): boolean => {
    if (res.status === 'accepted') {
      out.accepted++
      out.by_type[res.value.type] = (out.by_type[res.value.type] ?? 0) + 1
      if (DEVICE_TYPES.has(res.value.type)) devices.add(res.value.signer)
      return true
    }
    if (res.status === 'duplicate') {
      out.duplicate++
      return true
    }
    if (!last && RETRY_CODES.has(res.error.code) && retryBytes + bytes.byteLength <= MAX_RETRY_BYTES) {
      retry.push({ file, bytes })
      retryBytes += bytes.byteLength
      return false
    }
    refuse(messageFile(file), res.error.code, res.error.message)
    return true
  }

  const seen = new Set<string>()
  let total = 0
  for (;;) {
    let hdr: Buffer | null
    try {
      hdr = await input.upTo(REPORT_FRAME_HEADER)
    } catch (err) {
      throw new ReportError('ERR_REPORT_FORMAT', 'messages/', (err as Error).message, { cause: err })
    }
    if (hdr === null) break
    if (hdr.byteLength < REPORT_FRAME_HEADER) fail('ERR_REPORT_FORMAT', 'messages/', 'truncated stream')
    const name = hdr.subarray(0, 64).toString('latin1')
    const size = hdr.readUInt32BE(64)
    const file = messageFile(/^[0-9a-f]{64}$/.test(name) ? name : '?')
    if (!listed.has(name)) fail('ERR_REPORT_FORMAT', file, 'not listed in report.json')
    if (seen.has(name)) fail('ERR_REPORT_FORMAT', file, 'sent twice')
    if (size > MAX_REPORT_MESSAGE_BYTES) fail('ERR_REPORT_TOO_LARGE', file, `${size} bytes`)
    total += size
    if (total > MAX_REPORT_BYTES) fail('ERR_REPORT_TOO_LARGE', file, `the messages pass ${MAX_REPORT_BYTES} bytes`)
    seen.add(name)
    const bytes = await exactly(size, file)
    out.messages++
    if (createHash('sha256').update(bytes).digest('hex') !== name)
      refuse(file, 'ERR_REPORT_DIGEST', 'its bytes do not hash to its name (altered or damaged)')
    else tally(name, bytes, await deps.ingest(bytes), false)
    onProgress?.(out.messages)
  }
  // refusals a later message may have lifted: again, until a pass makes no progress
  for (let pass = retry.splice(0); pass.length > 0; ) {
    const waiting = pass.length
    retryBytes = 0
    for (const m of pass) tally(m.file, m.bytes, await deps.ingest(m.bytes), false)
    const next = retry.splice(0)
    if (next.length === waiting) {
      // no progress: the last pass's refusals are final
      for (const m of next) tally(m.file, m.bytes, await deps.ingest(m.bytes), true)
      break
    }
    pass = next
  }
  out.devices = [...devices].sort()
  return out
}

const fail = (code: ReportCode, file: string, reason: string): never => {
  throw new ReportError(code, file, reason)
}
