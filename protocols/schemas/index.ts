import * as z from 'zod'
import { AgentRelease } from './agent-release.ts'
import { DeviceEnrollment, Revocation } from './enrollment.ts'
import { HealthReport } from './health.ts'
import { DeviceInvite, InviteClaim } from './membership.ts'
import { ReleaseManifest } from './release.ts'
import { OperatorCommand, Verdict } from './rollout.ts'
import { SwarmKeyRotation } from './swarm-key.ts'
import { TrustRoot } from './trust.ts'

export * from './agent-release.ts'
export * from './common.ts'
export * from './enrollment.ts'
export * from './health.ts'
export * from './membership.ts'
export * from './policy.ts'
export * from './probes.ts'
export * from './release.ts'
export * from './rollout.ts'
export * from './swarm-key.ts'
export * from './trust.ts'

/** Messages signed by the operator key, carried as Sigstore bundles. */
export const OperatorMessage = z.discriminatedUnion('type', [
  ReleaseManifest,
  OperatorCommand,
  DeviceEnrollment,
  Revocation,
  TrustRoot,
  DeviceInvite,
  SwarmKeyRotation,
  AgentRelease,
])
export type OperatorMessage = z.infer<typeof OperatorMessage>

/** Messages signed by a device's own Ed25519 key. */
export const DeviceMessage = z.discriminatedUnion('type', [HealthReport, Verdict, InviteClaim])
export type DeviceMessage = z.infer<typeof DeviceMessage>

/** Every message type tag. */
export type MessageType = OperatorMessage['type'] | DeviceMessage['type']
export const OPERATOR_TYPES = [
  'ReleaseManifest',
  'OperatorCommand',
  'DeviceEnrollment',
  'Revocation',
  'TrustRoot',
  'DeviceInvite',
  'SwarmKeyRotation',
  'AgentRelease',
] as const
export const DEVICE_TYPES = ['HealthReport', 'Verdict', 'InviteClaim'] as const
