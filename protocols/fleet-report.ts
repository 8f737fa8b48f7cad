/**
 * Fleet reports: a site's evidence carried back to head office on removable media (docs/protocol.md,
 * "Fleet reports"). Pure: the index schema, the file names, the binary stream both API routes
 * speak, and the typed refusal. No I/O.
 *
 * A report is a directory:
 *   report.json          the index (`ReportIndex`): what the report holds, small, NOT trusted
 *   messages/<sha256>    one file per signed message: its exact wire bytes (as gossip carries them),
 *                        named by the sha256 of those bytes (content-addressed: two reports of one
 *                        site share files, a half-copied stick resumes with `cp -n`)
 *
 * The stream (`GET /fleet/report` answers one, `POST /fleet/report/import` takes one): a u32
 * big-endian length and the index's JSON, then one frame per message: 64 ASCII hex bytes (the
 * file name), a u32 big-endian length, the wire bytes. Every message is checked on import by the
 * importing node's own verifier and stored through its ingest (the path gossip and anti-entropy
 * use): nothing but the signatures is trusted; the index's `site` only labels the import's answer.
 */
import * as z from 'zod'
import { MAX_WIRE_SIZE } from './constants.ts'
import { LlmeshError } from './errors.ts'
import { Tag } from './schemas/common.ts'

/** File names inside a report directory. */
export const REPORT_INDEX_FILE = 'report.json'
export const REPORT_MESSAGES_DIR = 'messages'
/** Format version of `report.json`. */
export const REPORT_FORMAT = 1
/** Most messages one report carries (a day of 1-minute reports from ~60 devices, and the rest). */
export const MAX_REPORT_MESSAGES = 100_000
/** Most bytes of messages one report carries. */
export const MAX_REPORT_BYTES = 512 * 1024 * 1024
/** Largest `report.json` (and the stream's head). */
export const MAX_REPORT_INDEX_BYTES = 16 * 1024 * 1024
/** Largest message file: the largest wire message any topic accepts. */
export const MAX_REPORT_MESSAGE_BYTES = MAX_WIRE_SIZE
/** Bytes of a message frame's header (file name + length). */
export const REPORT_FRAME_HEADER = 68
/** The prefix of the tag that names a node's site (`--site b` declares the tag `site:b`). */
export const SITE_TAG_PREFIX = 'site:'

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/)
/** A site name: what follows `site:` in a tag. */
export const SiteName = z
  .string()
  .max(63 - SITE_TAG_PREFIX.length)
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a site name (a-z, 0-9, . _ -)')
  .refine((s) => Tag.safeParse(`${SITE_TAG_PREFIX}${s}`).success, 'expected a site name (a-z, 0-9, . _ -)')

/** One message of a report, as the index lists it (hints for order and progress: never trusted). */
export const ReportEntry = z
  .object({
    /** sha256 of the wire bytes: the file `messages/<file>`. */
    file: Hex64,
    /** The message type the exporting node verified (the importer verifies again). */
    type: z.string().min(1).max(32),
    bytes: z.number().int().positive().max(MAX_REPORT_MESSAGE_BYTES),
  })
  .strict()
/** One message of a report. */
export type ReportEntry = z.infer<typeof ReportEntry>

/** `report.json`. */
export const ReportIndex = z
  .object({
    type: z.literal('FleetReport'),
    format: z.literal(REPORT_FORMAT),
    fleet: z.string().min(1).max(128),
    /** The exporting node's site (`--site`), if it has one: a label, not evidence. */
    site: SiteName.optional(),
    /** Messages this node received at or after this time (ms), plus every membership message. */
    since: z.number().int().nonnegative().optional(),
    exported_at: z.number().int().nonnegative(),
    exported_by: z.string().max(128),
    /** Dependencies first (trust roots, releases, enrollments and claims, …, health reports). */
    messages: z.array(ReportEntry).max(MAX_REPORT_MESSAGES),
    bytes: z.number().int().nonnegative().max(MAX_REPORT_BYTES),
  })
  .strict()
/** `report.json`. */
export type ReportIndex = z.infer<typeof ReportIndex>

/** Why a report (as a whole) was refused. Single messages are refused with the verifier's codes. */
export type ReportCode = 'ERR_REPORT_FORMAT' | 'ERR_REPORT_TOO_LARGE' | 'ERR_REPORT_DIGEST' | 'ERR_REPORT_FLEET'

/** A report or one of its files refused. `file` is relative to the report directory. */
export class ReportError extends LlmeshError {
  readonly file: string
  constructor(code: ReportCode, file: string, reason: string, options?: { cause?: unknown }) {
    super(code, `${file}: ${reason}`, options)
    this.name = 'ReportError'
    this.file = file
  }
}

/** The path of a message file in a report. */
export function messageFile(hash: string): string {
  return `${REPORT_MESSAGES_DIR}/${hash}`
}

/** The site a node's tags name (`site:<name>`), if any: the first such tag. */
export function siteOf(tags: readonly string[] | null | undefined): string | null {
  const t = tags?.find((x) => x.startsWith(SITE_TAG_PREFIX))
  return t === undefined ? null : t.slice(SITE_TAG_PREFIX.length)
}

/** The tag of a site. */
export function siteTag(site: string): string {
  return `${SITE_TAG_PREFIX}${site}`
}

/** The u32 length prefix and JSON of a report stream's head. */
export function reportHead(index: ReportIndex): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(index))
  const out = new Uint8Array(4 + json.byteLength)
  new DataView(out.buffer).setUint32(0, json.byteLength)
  out.set(json, 4)
  return out
}

/** The header of a message frame: the file name (64 hex) and the length (u32 big-endian). */
export function reportFrameHeader(hash: string, size: number): Uint8Array {
  const out = new Uint8Array(REPORT_FRAME_HEADER)
  out.set(new TextEncoder().encode(hash), 0)
  new DataView(out.buffer).setUint32(64, size)
  return out
}

/** Parses a report index from its JSON bytes; ReportError(ERR_REPORT_FORMAT) naming report.json. */
export function parseReportIndex(bytes: Uint8Array): ReportIndex {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    throw new ReportError('ERR_REPORT_FORMAT', REPORT_INDEX_FILE, 'not JSON')
  }
  const r = ReportIndex.safeParse(json)
  if (!r.success) {
    const i = r.error.issues[0]
    throw new ReportError('ERR_REPORT_FORMAT', REPORT_INDEX_FILE, `${i?.path.join('.')}: ${i?.message ?? 'invalid'}`)
  }
  const seen = new Set<string>()
  let total = 0
  for (const m of r.data.messages) {
    if (seen.has(m.file)) throw new ReportError('ERR_REPORT_FORMAT', REPORT_INDEX_FILE, `lists ${m.file} twice`)
    seen.add(m.file)
    total += m.bytes
  }
  if (total !== r.data.bytes)
    throw new ReportError('ERR_REPORT_FORMAT', REPORT_INDEX_FILE, `bytes ${r.data.bytes}, its messages sum ${total}`)
  return r.data
}

/**
 * Splits a whole report stream (what `GET /fleet/report` answers): the index and each message
 * frame. A frame not listed, listed twice, torn, or past the bounds is a ReportError.
 */
export function splitReportStream(bytes: Uint8Array): {
  index: ReportIndex
  frames: { file: string; bytes: Uint8Array }[]
} {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const torn = (what: string): never => {
    throw new ReportError('ERR_REPORT_FORMAT', what, 'truncated stream')
  }
  if (bytes.byteLength < 4) torn(REPORT_INDEX_FILE)
  const headLen = view.getUint32(0)
  if (headLen > MAX_REPORT_INDEX_BYTES)
    throw new ReportError('ERR_REPORT_TOO_LARGE', REPORT_INDEX_FILE, `${headLen} bytes`)
  if (4 + headLen > bytes.byteLength) torn(REPORT_INDEX_FILE)
  const index = parseReportIndex(bytes.subarray(4, 4 + headLen))
  const listed = new Set(index.messages.map((m) => m.file))
  const frames: { file: string; bytes: Uint8Array }[] = []
  const seen = new Set<string>()
  let at = 4 + headLen
  while (at < bytes.byteLength) {
    if (at + REPORT_FRAME_HEADER > bytes.byteLength) torn(REPORT_MESSAGES_DIR)
    const file = new TextDecoder().decode(bytes.subarray(at, at + 64))
    const size = view.getUint32(at + 64)
    if (!listed.has(file) || seen.has(file))
      throw new ReportError(
        'ERR_REPORT_FORMAT',
        messageFile(file.replace(/[^0-9a-f]/g, '?')),
        'not listed once in report.json',
      )
    if (size > MAX_REPORT_MESSAGE_BYTES)
      throw new ReportError('ERR_REPORT_TOO_LARGE', messageFile(file), `${size} bytes`)
    at += REPORT_FRAME_HEADER
    if (at + size > bytes.byteLength) torn(messageFile(file))
    seen.add(file)
    frames.push({ file, bytes: bytes.subarray(at, at + size) })
    at += size
  }
  return { index, frames }
}
