/**
 * Wire constants shared by every peer: topic names, protocol ids, schema versions and size limits.
 * Changing any of these is a protocol change: bump the matching version.
 */

/** Schema version carried in every message's `v` field. */
export const SCHEMA_VERSION = 1 as const

/** Gossip topics. The fleet id is appended so that two fleets on one LAN never mix. */
export const TOPIC_RELEASES = 'llmesh/releases/1'
export const TOPIC_HEALTH = 'llmesh/health/1'
export const TOPIC_ROLLOUT = 'llmesh/rollout/1'

/** Returns the fleet-scoped topic name. */
export function fleetTopic(topic: string, fleet: string): string {
  return `${topic}/${fleet}`
}

/** libp2p protocol ids. */
export const PROTOCOL_ANTI_ENTROPY = '/llmesh/anti-entropy/2.0.0'
/** Anti-entropy version 1 (whole id lists): still answered and dialled as a fallback, for nodes not yet upgraded. */
export const PROTOCOL_ANTI_ENTROPY_V1 = '/llmesh/anti-entropy/1.0.0'
/**
 * Block replication: hypercore's protocol in length-prefixed frames, without hypercore's own
 * secret-stream encryption (the libp2p connection is already encrypted and authenticated); see
 * node/store/framed-stream.ts.
 */
export const PROTOCOL_REPLICATE = '/llmesh/replicate/2.0.0'
/** Replication version 1 (inside hypercore's secret-stream): still answered and dialled as a fallback, for nodes not yet upgraded. */
export const PROTOCOL_REPLICATE_V1 = '/llmesh/replicate/1.0.0'
/** Federated serving: one OpenAI request forwarded to a peer that serves its model (protocols/infer.ts). */
export const PROTOCOL_INFER = '/llmesh/infer/1.0.0'

/** DSSE payload types for operator-signed messages. */
export const PAYLOAD_TYPE_IN_TOTO = 'application/vnd.in-toto+json'
export const PAYLOAD_TYPE_OPERATOR = 'application/vnd.llmesh.operator+json'
/** DSSE payload type a device signs (PAE domain separation from operator messages). */
export const PAYLOAD_TYPE_DEVICE = 'application/vnd.llmesh.device+json'
/** in-toto predicate type of a release statement. */
export const PREDICATE_TYPE_RELEASE = 'https://llmesh.dev/release/v1'
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
/** in-toto predicate type of a package signature (the packages listed in a SHA256SUMS). */
export const PREDICATE_TYPE_PACKAGE = 'https://llmesh.dev/package/v1'
/** The checksum file beside the packages (`sha256sum -c` format) and its signature's file name. */
export const PACKAGE_SUMS_FILE = 'SHA256SUMS'
export const PACKAGE_SIGNATURE_FILE = 'SHA256SUMS.sigstore.json'
/** Largest SHA256SUMS and package signature read, bytes; most packages one SHA256SUMS lists. */
export const MAX_PACKAGE_SUMS_BYTES = 64 * 1024
export const MAX_PACKAGE_SIGNATURE_BYTES = 64 * 1024
export const MAX_PACKAGES_PER_SUMS = 64
/** Sigstore bundle media type produced and accepted. */
export const SIGSTORE_BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json'

/**
 * Size limits per message type, in bytes of the canonical encoding of the whole wire envelope.
 * A release manifest carries its chunk list: 4 MiB holds ~40k chunks, i.e. ~2.5 GiB of model at
 * the 64 KiB average chunk size (larger models raise the average chunk size).
 */
export const MAX_SIZE = {
  ReleaseManifest: 4 * 1024 * 1024,
  /** One chunk list per architecture (at most 8). */
  AgentRelease: 4 * 1024 * 1024,
  OperatorCommand: 16 * 1024,
  DeviceEnrollment: 16 * 1024,
  Revocation: 16 * 1024,
  TrustRoot: 64 * 1024,
  /** ~190 bytes per recipient: 16,384 devices fit. */
  SwarmKeyRotation: 4 * 1024 * 1024,
  HealthReport: 64 * 1024,
  Verdict: 512 * 1024,
  DeviceInvite: 16 * 1024,
  InviteClaim: 32 * 1024,
} as const

/** The largest message any topic accepts (gossipsub's max transmit size is set from it). */
export const MAX_WIRE_SIZE = 5 * 1024 * 1024

/** Default allowed clock skew when checking timestamps, ms. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000

/** Ed25519 public keys a verifier keeps imported (one per signer; importing costs about one signature check). */
export const ED25519_KEY_CACHE_SIZE = 4096
