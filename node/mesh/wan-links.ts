/**
 * Which connections are WAN links (to another site), for `--wan-rate` (wan-rate.ts).
 *
 * How it works: a connection is a WAN link when it is relayed (`/p2p-circuit`: the peer is behind
 * NAT somewhere else), or when the peer's IP address is on none of this node's own subnets (the
 * interfaces' address/prefix, `os.networkInterfaces()`): a site's devices share its LAN, and a
 * gateway reaches head office or another site through a router. Loopback and IPv6 link-local
 * peers are always local. Pure but for the interface list, which is read at most once a minute.
 */

import { isIPv4, isIPv6 } from 'node:net'
import { networkInterfaces } from 'node:os'

/** A local subnet: its network address and prefix, as a bigint range. */
export interface LocalNet {
  v6: boolean
  network: bigint
  prefix: number
}

/** The IP address as a bigint (IPv4 in 32 bits, IPv6 in 128), or null when it is neither. */
export function ipToBigInt(ip: string): { v6: boolean; n: bigint } | null {
  if (isIPv4(ip)) return { v6: false, n: ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n) }
  if (!isIPv6(ip)) return null
  let text = ip.split('%')[0]
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4 !== null) {
    const n = ipToBigInt(v4[1])?.n ?? 0n
    text = `${text.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  return { v6: true, n: groups.reduce((a, g) => (a << 16n) | BigInt(Number.parseInt(g, 16)), 0n) }
}

/** Parses `address/prefix` (os.networkInterfaces()'s `cidr`). */
export function parseCidr(cidr: string): LocalNet | null {
  const [ip, p] = cidr.split('/')
  const addr = ipToBigInt(ip)
  const prefix = Number(p)
  if (addr === null || !Number.isInteger(prefix)) return null
  const bits = addr.v6 ? 128 : 32
  if (prefix < 0 || prefix > bits) return null
  const mask = ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix)
  return { v6: addr.v6, network: addr.n & mask, prefix }
}

/** Whether a connection with this remote multiaddr crosses a WAN link, given the node's subnets. */
export function isWanAddress(remoteAddr: string, local: readonly LocalNet[]): boolean {
  if (remoteAddr.includes('/p2p-circuit')) return true
  const m = /^\/ip([46])\/([^/]+)/.exec(remoteAddr)
  if (m === null) return false // dns or unix: cannot tell, treat as local (never throttle a LAN by mistake)
  const addr = ipToBigInt(m[2])
  if (addr === null) return false
  if (!addr.v6 && addr.n >> 24n === 127n) return false // 127.0.0.0/8
  if (addr.v6 && (addr.n === 1n || addr.n >> 118n === 0x3fan)) return false // ::1, fe80::/10
  const bits = addr.v6 ? 128 : 32
  return !local.some((net) => {
    if (net.v6 !== addr.v6) return false
    const mask = ((1n << BigInt(net.prefix)) - 1n) << BigInt(bits - net.prefix)
    return (addr.n & mask) === net.network
  })
}

/** This host's subnets, from its interfaces. */
export function localNets(): LocalNet[] {
  const out: LocalNet[] = []
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) {
      const net = i.cidr === null ? null : parseCidr(i.cidr)
      if (net !== null) out.push(net)
    }
  }
  return out
}

/** Classifies connections, re-reading the interfaces at most every `refreshMs`. */
export class WanLinks {
  private nets: LocalNet[] = []
  private readAt = Number.NEGATIVE_INFINITY
  private readonly refreshMs: number
  private readonly read: () => LocalNet[]

  constructor(init: { refreshMs?: number; read?: () => LocalNet[] } = {}) {
    this.refreshMs = init.refreshMs ?? 60_000
    this.read = init.read ?? localNets
  }

  /** Whether the connection to `remoteAddr` is a WAN link. */
  isWan(remoteAddr: string, now = Date.now()): boolean {
    if (now - this.readAt >= this.refreshMs) {
      this.nets = this.read()
      this.readAt = now
    }
    return isWanAddress(remoteAddr, this.nets)
  }
}
