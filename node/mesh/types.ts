/**
 * Types shared by the mesh services: what a verified wire message looks like once it is inside
 * the node, and the verifier the mesh runs every received message through.
 */
import type { VerificationError } from '../../protocols/errors.ts'
import type {
  AgentRelease,
  DeviceEnrollment,
  DeviceInvite,
  DeviceMessage,
  HealthReport,
  InviteClaim,
  MessageType,
  OperatorCommand,
  OperatorMessage,
  ReleaseManifest,
  Revocation,
  SwarmKeyRotation,
  TrustRoot,
  Verdict,
} from '../../protocols/schemas/index.ts'

/** Any message the mesh carries, decoded. */
export type AnyMessage = OperatorMessage | DeviceMessage

/** What the verifier hands back for a wire message that passed every check. */
export interface VerifiedWire<M extends AnyMessage = AnyMessage> {
  /** The message id (hash of canonical content and signer, `messageId`): its name everywhere. */
  digest: string
  type: M['type']
  message: M
  /** Who signed it: a device peer id, or the operator key id. */
  signer: string
}

/** A verified message as the node keeps it. */
export interface StoredMessage<M extends AnyMessage = AnyMessage> extends VerifiedWire<M> {
  /** The exact wire bytes (canonical JSON of the envelope), re-sent as is by gossip and anti-entropy. */
  bytes: Uint8Array
  /** When this node first accepted it (ms since epoch). */
  receivedAt: number
}

/**
 * Verification outcome: a value or a typed error, never a throw. A refusal made after the
 * signature was checked names the message's id (`id`).
 */
export type VerifyOutcome =
  | { ok: true; value: VerifiedWire }
  /** `claimedSigner`: the unproven signer of an ERR_NOT_ENROLLED refusal (protocols/verify.ts). */
  | { ok: false; error: VerificationError; id?: string; claimedSigner?: string }

/**
 * Checks raw wire bytes: size, schema, signature, enrollment, fleet, freshness, rollback. The mesh
 * runs every message it receives (gossip or anti-entropy) and every message it publishes through
 * it. `from` is the peer that handed the bytes over (none for local ones), for per-peer quotas.
 */
export type MeshVerifier = (bytes: Uint8Array, now: number, from?: string) => VerifyOutcome | Promise<VerifyOutcome>

/** Typed events the message store emits to the rest of the node, one per message type. */
export interface MessageEvents {
  release: [StoredMessage<ReleaseManifest>]
  command: [StoredMessage<OperatorCommand>]
  verdict: [StoredMessage<Verdict>]
  health: [StoredMessage<HealthReport>]
  enrollment: [StoredMessage<DeviceEnrollment>]
  revocation: [StoredMessage<Revocation>]
  /** A device's claim of an invite (it may enroll the device: see protocols/membership). */
  claim: [StoredMessage<InviteClaim>]
  /** Never emitted: a bare invite is not stored. */
  invite: [StoredMessage<DeviceInvite>]
  trustroot: [StoredMessage<TrustRoot>]
  /** A release of llmesh itself (node/agent-update/). */
  'agent-release': [StoredMessage<AgentRelease>]
  swarmkey: [StoredMessage<SwarmKeyRotation>]
  /** Every newly stored message, whatever its type. */
  message: [StoredMessage]
}

/** Event name per message type. */
export const EVENT_OF_TYPE = {
  ReleaseManifest: 'release',
  AgentRelease: 'agent-release',
  OperatorCommand: 'command',
  Verdict: 'verdict',
  HealthReport: 'health',
  DeviceEnrollment: 'enrollment',
  Revocation: 'revocation',
  TrustRoot: 'trustroot',
  InviteClaim: 'claim',
  DeviceInvite: 'invite',
  SwarmKeyRotation: 'swarmkey',
} as const satisfies Record<MessageType, keyof MessageEvents>

/** Where a message came from. */
export type MessageSource = 'gossip' | 'anti-entropy' | 'local' | 'disk' | 'import'
