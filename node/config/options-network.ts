/**
 * The options of how a node reaches its peers: where it listens, how it finds peers (mDNS,
 * bootstrap), its extra transports (WebSockets, circuit relay) and the cap on WAN traffic. Part of
 * the one option table (node/config/options.ts spreads them in, in this order).
 */
import type { OptionSpec } from './option-spec.ts'

/** The libp2p listen addresses (shown right after `api`). */
export const LISTEN_OPTION: OptionSpec = {
  name: 'listen',
  flag: '--listen <multiaddr>',
  env: 'LLMESH_LISTEN',
  key: 'listen',
  kind: 'list',
  repeatable: true,
  defaultText: '`/ip4/0.0.0.0/tcp/0`',
  help: 'libp2p listen address (flag repeatable; env comma-separated; file a list)',
}

/** Discovery, transports and the WAN cap, in the order the docs show them (after `site`). */
export const NETWORK_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'mdns',
    flag: '--no-mdns',
    env: 'LLMESH_MDNS',
    key: 'mdns',
    kind: 'bool',
    default: () => true,
    defaultText: '`true`',
    help: 'mDNS discovery and the bonjour advertisement',
  },
  {
    name: 'bootstrap',
    flag: '--bootstrap <multiaddr>',
    env: 'LLMESH_BOOTSTRAP',
    key: 'bootstrap',
    kind: 'list',
    repeatable: true,
    defaultText: 'none',
    help: 'peer to dial (flag repeatable; env comma-separated; file a list)',
  },
  {
    name: 'ws_port',
    flag: '--ws-port <port>',
    env: 'LLMESH_WS_PORT',
    key: 'ws_port',
    kind: 'int',
    min: 0,
    defaultText: 'none (no WebSocket listener)',
    help: 'also listen for libp2p over WebSockets on this TCP port (/ip4/0.0.0.0/tcp/<port>/ws), for sites behind HTTP-only firewalls; 0: any free port',
  },
  {
    name: 'relay_server',
    flag: '--relay-server',
    env: 'LLMESH_RELAY_SERVER',
    key: 'relay_server',
    kind: 'bool',
    default: () => false,
    defaultText: '`false`',
    help: 'relay (circuit relay v2) for fleet nodes behind NAT that listen on /p2p-circuit; bounded: 32 reservations, 64 circuits, 1 GiB and 1 h per relayed connection',
  },
  {
    name: 'wan_rate',
    flag: '--wan-rate <rate>',
    env: 'LLMESH_WAN_RATE',
    key: 'wan_rate',
    kind: 'string',
    defaultText: 'none (no cap)',
    help: 'cap on model bytes this node sends and receives over WAN links (peers off its subnets, or relayed), each way: 5Mbit, 500kbit, 2MB or bytes/s',
  },
]
