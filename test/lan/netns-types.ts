/** The shapes a LAN test bed hands out (test/lan/netns.ts): hosts, links, processes and their logs. */
import type { ChildProcess } from 'node:child_process'

/** tc netem shaping of one link (applied on the namespace's eth0 egress). */
export interface Shaping {
  /** e.g. `10mbit` */
  rate?: string
  /** e.g. `20ms` */
  delay?: string
  /** percent, e.g. 1 */
  loss?: number
}

/** A routed link between a host of one bed and a host of another (see TestBed.wanLink). */
export interface WanLink {
  /** The router namespace. */
  ns: string
  /** This bed's host's address on the link, and the other's. */
  ip: string
  otherIp: string
  /** Bytes the router moved on this side of the link (both directions), from the kernel's counters. */
  bytes(): Promise<number>
}

/** One namespace of the bed. */
export interface Host {
  index: number
  ns: string
  ip: string
}

/** A JSON log line of a node process. */
export type LogLine = Record<string, unknown> & { level?: number; msg?: string; time?: number }

/** A process started in a namespace. */
export interface BedProcess {
  host: Host
  name: string
  child: ChildProcess
  /** Parsed JSON stderr lines (pino) in arrival order. */
  logs: LogLine[]
  /** Raw stdout and stderr text. */
  stdout: string
  stderr: string
  logFile: string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}
