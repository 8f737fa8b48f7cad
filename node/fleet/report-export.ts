/**
 * Exporting a fleet report (protocols/fleet-report.ts) from any node: the signed messages its store
 * holds, as their exact wire bytes, dependencies first (the anti-entropy order: trust roots,
 * releases, enrollments and claims, revocations, commands, verdicts, health reports). With
 * `since`, only what this node received at or after that time, plus every membership message
 * (trust roots, enrollments, claims, revocations: small, and what makes the rest verifiable at
 * head office). A report past MAX_REPORT_MESSAGES or MAX_REPORT_BYTES is refused, not cut: a
 * report that silently lost messages would hide evidence.
 */
import { createHash } from 'node:crypto'
import {
  MAX_REPORT_BYTES,
  MAX_REPORT_MESSAGES,
  REPORT_FORMAT,
  ReportError,
  type ReportIndex,
  reportFrameHeader,
  reportHead,
} from '../../protocols/fleet-report.ts'
import type { MessageType } from '../../protocols/schemas/index.ts'
import { order } from '../mesh/anti-entropy-frames.ts'
import type { MessageStore } from '../mesh/message-store.ts'
import type { StoredMessage } from '../mesh/types.ts'

/** Message types a report always carries, whatever `since` says. */
const MEMBERSHIP: ReadonlySet<MessageType> = new Set(['TrustRoot', 'DeviceEnrollment', 'InviteClaim', 'Revocation'])
/** Message types a report carries (a bare invite is never stored). */
const CARRIED: readonly MessageType[] = [
  'TrustRoot',
  'ReleaseManifest',
  'DeviceEnrollment',
  'InviteClaim',
  'Revocation',
  'SwarmKeyRotation',
  'OperatorCommand',
  'Verdict',
  'HealthReport',
]

/** What exporting reads. */
export interface ReportSource {
  messages: Pick<MessageStore, 'list'>
  fleet: string
  /** This node's peer id and site (recorded in the index). */
  self: string
  site?: string | null
  now?: () => number
}

/** A report: its index and, per message, the wire bytes and their hash. */
export interface ReportPlan {
  index: ReportIndex
  messages: { file: string; bytes: Uint8Array }[]
}

/** Plans the report of this node's store. See the header. */
export function planReport(src: ReportSource, since?: number): ReportPlan {
  const picked: StoredMessage[] = []
  for (const type of CARRIED)
    for (const m of src.messages.list(type))
      if (since === undefined || MEMBERSHIP.has(type) || m.receivedAt >= since) picked.push(m)
  picked.sort(order)
  if (picked.length > MAX_REPORT_MESSAGES)
    throw new ReportError(
      'ERR_REPORT_TOO_LARGE',
      'report.json',
      `${picked.length} messages, more than ${MAX_REPORT_MESSAGES}: export with --since`,
    )
  const messages = picked.map((m) => ({
    file: createHash('sha256').update(m.bytes).digest('hex'),
    bytes: m.bytes,
    type: m.type,
  }))
  const bytes = messages.reduce((n, m) => n + m.bytes.byteLength, 0)
  if (bytes > MAX_REPORT_BYTES)
    throw new ReportError(
      'ERR_REPORT_TOO_LARGE',
      'report.json',
      `${bytes} bytes, more than ${MAX_REPORT_BYTES}: export with --since`,
    )
  const index: ReportIndex = {
    type: 'FleetReport',
    format: REPORT_FORMAT,
    fleet: src.fleet,
    ...(src.site ? { site: src.site } : {}),
    ...(since !== undefined ? { since } : {}),
    exported_at: (src.now ?? Date.now)(),
    exported_by: src.self,
    messages: messages.map((m) => ({ file: m.file, type: m.type, bytes: m.bytes.byteLength })),
    bytes,
  }
  return { index, messages: messages.map(({ file, bytes }) => ({ file, bytes })) }
}

/** The report as the stream `GET /fleet/report` answers (protocols/fleet-report.ts). */
export function reportStream(plan: ReportPlan): Buffer {
  const parts: Uint8Array[] = [reportHead(plan.index)]
  for (const m of plan.messages) parts.push(reportFrameHeader(m.file, m.bytes.byteLength), m.bytes)
  return Buffer.concat(parts)
}
