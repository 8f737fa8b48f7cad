/**
 * What the daemon (daemon.ts) is told and what it derives from that before any service starts:
 * its options (`DaemonInit`), the tags and hello it declares to peers, its WebSocket listen
 * address, and what it writes to `<data>/node.json` once running (`NodeInfo`).
 */
import { arch, totalmem } from 'node:os'
import { siteTag } from '../protocols/fleet-report.ts'
import { DEFAULT_DEVICE_TYPE } from './constants.ts'
import type { DaemonFleet, Role, RouteFactory, ServiceFactory } from './daemon-context.ts'
import type { Logger } from './logger.ts'
import type { AntiEntropyInit, Hello } from './mesh/anti-entropy.ts'

/** Options of the daemon. */
export interface DaemonInit {
  fleet: DaemonFleet
  dataDir: string
  role?: Role
  /** libp2p listen multiaddrs (default all interfaces, any port). */
  listen?: string[]
  /** HTTP API `host:port` (default 127.0.0.1:7420). */
  api?: string
  /** Bearer token the API requires from non-loopback callers (none: no auth, and `api` must be loopback). */
  apiToken?: string
  /** Accept a non-loopback `api` without a token (`--api-insecure`): start() refuses it otherwise. */
  apiInsecure?: boolean
  /** This device's tags as it declares them (shown to the operator; never used for cohorts). */
  tags?: string[]
  /**
   * The site this node is at (`--site`): declared as the tag `site:<name>` in its hello and signed
   * health reports, so every node (and head office, through fleet reports) labels it by site.
   */
  site?: string
  /** The device type it declares in its capabilities (default `generic`; `device_type` in node/config/options.ts). */
  deviceType?: string
  /** A name for people this device declares (hello, logs); none by default (the CLI's default is the host name). */
  name?: string
  /** An invite file's text (`--invite`): claimed at start unless this device is enrolled (node/fleet/invite-claim.ts). */
  invite?: string
  /** libp2p mDNS and bonjour (default true). */
  mdns?: boolean
  /** Deadline of each service's `stop()`, ms (default `SERVICE_STOP_TIMEOUT_MS`): a stuck one is logged and skipped. */
  serviceStopTimeoutMs?: number
  bootstrap?: string[]
  /** Also listen for libp2p over WebSockets on this TCP port (`--ws-port`; 0: any). */
  wsPort?: number
  /** Act as a circuit relay v2 server for nodes behind NAT (`--relay-server`). */
  relayServer?: boolean
  /** Cap, bytes/s each way, on replication over WAN links (`--wan-rate`). */
  wanRate?: number
  reportIntervalMs?: number
  antiEntropy?: Omit<AntiEntropyInit, 'hello'>
  /** Extra services, started in order after the mesh and before the API. */
  services?: ServiceFactory[]
  /** Extra fastify route plugins on the API server. */
  routes?: RouteFactory[]
  logger?: Logger
}

/** What `<data>/node.json` holds once the daemon runs. */
export interface NodeInfo {
  peerId: string
  fleet: string
  role: Role
  multiaddrs: string[]
  api: string
  pid: number
}

/** What this node tells peers about itself in anti-entropy rounds: role, name, tags, capabilities. */
export function nodeHello(init: DaemonInit, role: Role, tags: string[]): Hello {
  return {
    role,
    ...(init.name === undefined ? {} : { name: init.name }),
    tags,
    capabilities: {
      arch: (['arm64', 'x64', 'arm', 'riscv64'] as const).find((a) => a === arch()) ?? 'any',
      ram_mb: Math.floor(totalmem() / (1024 * 1024)),
      device_type: init.deviceType ?? DEFAULT_DEVICE_TYPE,
    },
  }
}

/** The WebSocket listen address of `--ws-port` (none without it). */
export function wsListen(port: number | undefined): string[] {
  return port === undefined ? [] : [`/ip4/0.0.0.0/tcp/${port}/ws`]
}

/** The tags a node declares: its `--tags`, and `site:<name>` for its `--site` (once). */
export function declaredTags(tags: readonly string[] | undefined, site: string | undefined): string[] {
  const out = [...(tags ?? [])]
  if (site !== undefined && !out.includes(siteTag(site))) out.push(siteTag(site))
  return out
}
