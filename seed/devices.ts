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
import {
  type DeviceCapabilities,
  type DeviceMembership,
  type EnrollmentRecord,
  type FleetDevice,
  type FleetViewInput,
  fleetDevices,
  latestEnrollment,
} from '../protocols/fleet/device-view.ts'
import { SEED_TAG } from '../protocols/rollout/constants.ts'
import { type DeviceEnrollment, PeerIdString, type Revocation, Tag } from '../protocols/schemas/index.ts'

export type { DeviceCapabilities, DeviceHello, EnrollmentRecord } from '../protocols/fleet/device-view.ts'
export { latestEnrollment }

/** Device states in the list (the view's membership). */
export type DeviceState = DeviceMembership

/** One device in `GET /devices` and `llmesh device list`: the fleet device view and what the seed adds. */
export type DeviceView = FleetDevice & {
  /** The view's `membership` (the name `llmesh device list` reads). */
  state: DeviceState
  /** Whether the tags were set by the operator (the auto-enroller leaves them alone). */
  pinned: boolean
  connected: boolean
}

/** What the device list reads. */
export interface DeviceListInput extends FleetViewInput {
  connected: ReadonlySet<string>
  /** Whether an enrollment digest was made by the auto-enroller (else: the operator pinned the tags). */
  isAuto: (digest: string) => boolean
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
  /** A name for people (the one the device declares); default the current enrollment's. */
  name?: string
  /** The device's current effective enrollment, if any (issued_at must go up; the seed tag stays). */
  current?: Pick<DeviceEnrollment, 'issued_at' | 'tags' | 'name'>
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
  const name = d.name ?? d.current?.name
  return {
    type: 'DeviceEnrollment',
    v: 1,
    fleet: d.fleet,
    device: d.device,
    tags,
    capabilities: d.capabilities,
    ...(name === undefined ? {} : { name }),
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
  const effective = new Map<string, EnrollmentRecord>()
  for (const r of input.enrollments) {
    const had = effective.get(r.message.device)
    effective.set(r.message.device, had === undefined ? r : (latestEnrollment([had, r]) as EnrollmentRecord))
  }
  return fleetDevices(input).map((d) => {
    const latest = effective.get(d.id)
    return {
      ...d,
      state: d.membership,
      pinned: latest !== undefined && !input.isAuto(latest.digest),
      connected: input.connected.has(d.id),
    }
  })
}
