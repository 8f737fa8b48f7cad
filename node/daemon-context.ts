/**
 * The daemon's service contract: what a service is, and the context every service and route
 * plugin is built from. Its own module so that the daemon and the modules it composes
 * (daemon-status.ts, services, routes) depend on the contract, not on each other.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { TrustRoot } from '../protocols/index.ts'
import type { StatusRegistry } from './api/status.ts'
import type { Identity } from './identity.ts'
import type { Logger } from './logger.ts'
import type { Hello } from './mesh/anti-entropy.ts'
import type { IngestResult } from './mesh/ingest.ts'
import type { MeshNode } from './mesh/mesh-node.ts'
import type { MessageStore } from './mesh/message-store.ts'
import type { VerifyOutcome } from './mesh/types.ts'

/** A long-lived service with idempotent start/stop. */
export interface Service {
  start(): Promise<void>
  stop(): Promise<void>
}

/** Role of a daemon. */
export type Role = 'node' | 'seed'

/** The fleet as the daemon needs it (from `loadFleet(dir)`). */
export interface DaemonFleet {
  id: string
  /** Join secret: the libp2p swarm key file's bytes. */
  psk: Uint8Array
  /** Verified trust root. */
  trust: TrustRoot
  /** Its signed chain since v1 (`chain[i]` = envelopes of root v(i+1)), handed on to peers. */
  chain?: Uint8Array[][]
}

/** What services and route plugins get. */
export interface DaemonContext {
  config: {
    role: Role
    fleet: string
    dataDir: string
    tags: string[]
    reportIntervalMs: number
    /** What this node tells peers about itself (tags, capabilities) in anti-entropy rounds. */
    hello: Hello
  }
  identity: Identity
  logger: Logger
  /** Verified messages, with typed events (`release`, `command`, `verdict`, `health`, …). */
  store: MessageStore
  mesh: MeshNode
  /** Verifies, stores and gossips wire bytes (throws the VerificationError if invalid). */
  publish(bytes: Uint8Array): Promise<IngestResult>
  /** Runs wire bytes through the node's verifier without storing them (e.g. a bundle's, before import). */
  verify(bytes: Uint8Array): Promise<VerifyOutcome>
  /** /status hooks. */
  status: StatusRegistry
  /** The trust root in force. */
  trust(): TrustRoot
  /** Re-publishes the bonjour TXT records (call when the active models change). */
  advertise(): Promise<void>
}

/** Builds a service once the context exists. */
export type ServiceFactory = (ctx: DaemonContext) => Service | Promise<Service>
/** Builds a fastify route plugin once the context exists. */
export type RouteFactory = (ctx: DaemonContext) => FastifyPluginAsync
