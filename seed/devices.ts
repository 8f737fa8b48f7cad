/**
 * Operator device management, the pure part: building the operator-signed DeviceEnrollment and
 * Revocation messages, and the fleet's device list as the seed (or any node) sees it.
 *
 * The effective enrollment of a device is its enrollment with the highest `issued_at` (the
 * message store and the rollout logic agree on that), so a re-tag is simply a new enrollment with
 * a higher `issued_at`. A revocation is final: a revoked peer id can never be enrolled again.
 * No clock reads here: `now` comes in.
 */
import { InvalidInputError } from '../protocols/errors.ts'
import { SEED_TAG } from '../protocols/rollout/constants.ts'
import { type DeviceEnrollment, PeerIdString, type Revocation, Tag } from '../protocols/schemas/index.ts'

/** Capabilities as an enrollment carries them. */
export type DeviceCapabilities = DeviceEnrollment['capabilities']

/** A stored enrollment with its digest (what `latestEnrollment` picks from). */
export interface EnrollmentRecord {
  message: DeviceEnrollment
  digest: string
}

/** A device's self-description from its latest anti-entropy round. */
export interface DeviceHello {
  role: 'node' | 'seed'
  tags: string[]
  capabilities: DeviceCapabilities
}

/** Device states in the list. */
export type DeviceState = 'enrolled' | 'expired' | 'revoked' | 'unenrolled'

/** One device in `GET /devices` and `llmesh device list`. */
export interface DeviceView {
  id: string
  state: DeviceState
  /** `enrolled` (by the operator or an invite), `pending` (nobody enrolled it) or `revoked`. */
  membership: 'enrolled' | 'pending' | 'revoked'
  /** The name the invite that enrolled it gave, if any. */
  name: string | null
  /** Tags of the effective enrollment (empty when none). */
  tags: string[]
  /** Tags the device declares itself (its `--tags`), when it was seen in an anti-entropy round. */
  declared_tags: string[] | null
  /** Whether the tags were set by the operator (the auto-enroller leaves them alone). */
  pinned: boolean
  role: 'node' | 'seed' | null
  capabilities: DeviceCapabilities | null
  enrolled_at: number | null
  expires_at: number | null
  revoked: { reason: string; issued_at: number } | null
  connected: boolean
  /** End of the window of its latest health report (ms since epoch). */
  last_report: number | null
  /** Versions its latest health report says it runs (`model@version`). */
  active: string[]
}

/** What the device list reads. */
export interface DeviceListInput {
  enrollments: readonly EnrollmentRecord[]
  revocations: readonly Revocation[]
  reports: ReadonlyArray<{
    device: string
    window: { end: number }
    active: ReadonlyArray<{ model: string; version: string }>
  }>
  hellos: ReadonlyMap<string, DeviceHello>
  connected: ReadonlySet<string>
  /** Whether an enrollment digest was made by the auto-enroller (else: the operator pinned the tags). */
  isAuto: (digest: string) => boolean
  /** The enrollment in force per device (operator's or by invite: MessageStore.enrollmentsInForce). */
  inForce?: readonly DeviceEnrollment[]
  now: number
}

/** The effective (highest `issued_at`) enrollment among `records`, expired or not. Ties: lower tag list. */
export function latestEnrollment(records: Iterable<EnrollmentRecord>): EnrollmentRecord | undefined {
  let best: EnrollmentRecord | undefined
  for (const r of records) {
    const e = r.message
    const b = best?.message
    if (b === undefined || e.issued_at > b.issued_at || (e.issued_at === b.issued_at && e.tags.join() < b.tags.join()))
      best = r
  }
  return best
}

/** Parses a comma-separated tag list (`a,b`); an empty string is the empty list. */
export function parseTags(text: string): string[] {
  const tags = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
  return validTags(tags)
}

/** Checks tags against the schema, drops duplicates. Throws InvalidInputError. */
export function validTags(tags: readonly unknown[]): string[] {
  if (tags.length > 32) throw new InvalidInputError('at most 32 tags')
  for (const t of tags) {
    if (!Tag.safeParse(t).success) throw new InvalidInputError(`bad tag ${JSON.stringify(t)} (a-z, 0-9, : . _ -)`)
  }
  return [...new Set(tags as string[])]
}

/** Checks a peer id. Throws InvalidInputError. */
export function validPeer(peer: string): string {
  if (!PeerIdString.safeParse(peer).success) throw new InvalidInputError(`expected a device peer id, got ${peer}`)
  return peer
}

/** Options of `buildEnrollment`. */
export interface EnrollmentDraft {
  fleet: string
  device: string
  tags: readonly string[]
  capabilities: DeviceCapabilities
  /** The device's current effective enrollment, if any (issued_at must go up; the seed tag stays). */
  current?: Pick<DeviceEnrollment, 'issued_at' | 'tags'>
  now: number
  ttlMs?: number
}

/**
 * A new enrollment that supersedes `current`: `issued_at` strictly above it (the per-device
 * rollback sequence), and a seed keeps the reserved seed tag (cohorts never count seeds).
 */
export function buildEnrollment(d: EnrollmentDraft): DeviceEnrollment {
  validPeer(d.device)
  let tags = validTags(d.tags)
  if (d.current?.tags.includes(SEED_TAG) && !tags.includes(SEED_TAG)) tags = [...tags, SEED_TAG]
  return {
    type: 'DeviceEnrollment',
    v: 1,
    fleet: d.fleet,
    device: d.device,
    tags,
    capabilities: d.capabilities,
    issued_at: Math.max(d.now, (d.current?.issued_at ?? 0) + 1),
    ...(d.ttlMs === undefined ? {} : { expires_at: d.now + d.ttlMs }),
  }
}

/** A revocation of `device` (a reason is required: it is what the fleet's logs will say). */
export function buildRevocation(fleet: string, device: string, reason: string, now: number): Revocation {
  validPeer(device)
  const why = reason.trim()
  if (why === '') throw new InvalidInputError('a revocation needs a reason')
  return { type: 'Revocation', v: 1, fleet, device, issued_at: now, reason: why.slice(0, 512) }
}

/** Every device the node knows of (enrolled, revoked, or only seen), sorted by id. */
export function listDevices(input: DeviceListInput): DeviceView[] {
  const ids = new Set<string>([...input.hellos.keys()])
  const inForce = new Map((input.inForce ?? []).map((e) => [e.device, e]))
  for (const id of inForce.keys()) ids.add(id)
  const enrollments = new Map<string, EnrollmentRecord[]>()
  for (const r of input.enrollments) {
    ids.add(r.message.device)
    const list = enrollments.get(r.message.device)
    if (list === undefined) enrollments.set(r.message.device, [r])
    else list.push(r)
  }
  const revocations = new Map<string, Revocation>()
  for (const r of input.revocations) {
    ids.add(r.device)
    const had = revocations.get(r.device)
    if (had === undefined || r.issued_at < had.issued_at) revocations.set(r.device, r)
  }
  const last = new Map<string, { end: number; active: string[] }>()
  for (const h of input.reports) {
    ids.add(h.device)
    const had = last.get(h.device)
    if (had === undefined || h.window.end > had.end)
      last.set(h.device, { end: h.window.end, active: h.active.map((a) => `${a.model}@${a.version}`) })
  }
  return [...ids].sort().map((id) => {
    const latest = latestEnrollment(enrollments.get(id) ?? [])
    const e = inForce.get(id) ?? latest?.message
    const rev = revocations.get(id)
    const hello = input.hellos.get(id)
    const expired = e?.expires_at !== undefined && e.expires_at <= input.now
    const state: DeviceState =
      rev !== undefined ? 'revoked' : e === undefined ? 'unenrolled' : expired ? 'expired' : 'enrolled'
    return {
      id,
      state,
      membership: state === 'revoked' ? 'revoked' : state === 'enrolled' ? 'enrolled' : 'pending',
      name: e?.name ?? null,
      tags: e !== undefined && state === 'enrolled' ? [...e.tags] : [],
      declared_tags: hello === undefined ? null : [...hello.tags],
      pinned: latest !== undefined && !input.isAuto(latest.digest),
      role: hello?.role ?? (e?.tags.includes(SEED_TAG) ? 'seed' : null),
      capabilities: e?.capabilities ?? hello?.capabilities ?? null,
      enrolled_at: e?.issued_at ?? null,
      expires_at: e?.expires_at ?? null,
      revoked: rev === undefined ? null : { reason: rev.reason, issued_at: rev.issued_at },
      connected: input.connected.has(id),
      last_report: last.get(id)?.end ?? null,
      active: last.get(id)?.active ?? [],
    }
  })
}
