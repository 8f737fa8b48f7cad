import * as z from 'zod'
import { SCHEMA_VERSION } from '../constants.ts'
import { CpuArch, FleetId, PeerIdString, Tag, Timestamp } from './common.ts'

/** Binds a device's peer id to its tags and capabilities; signed by the operator key. */
export const DeviceEnrollment = z.object({
  type: z.literal('DeviceEnrollment'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  device: PeerIdString,
  tags: z.array(Tag).max(32),
  /** A name for people (from the invite that enrolled the device); never used for decisions. */
  name: z.string().min(1).max(64).optional(),
  capabilities: z.object({
    arch: CpuArch,
    ram_mb: z.number().int().nonnegative(),
    accelerator: z.string().max(64).optional(),
    device_type: z.string().max(64),
  }),
  issued_at: Timestamp,
  expires_at: Timestamp.optional(),
})
export type DeviceEnrollment = z.infer<typeof DeviceEnrollment>

/** Removes a device from the fleet's decisions; signed by the operator key. Revocations are final. */
export const Revocation = z.object({
  type: z.literal('Revocation'),
  v: z.literal(SCHEMA_VERSION),
  fleet: FleetId,
  device: PeerIdString,
  issued_at: Timestamp,
  reason: z.string().max(512),
})
export type Revocation = z.infer<typeof Revocation>
