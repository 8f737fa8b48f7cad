/**
 * LAN test bed: K network namespaces joined by a private bridge that lives in a namespace of its
 * own, so nothing touches the machine's real interfaces. Each run picks unique names
 * (`llmt-<owner pid>-<rand>-…`) and a random 10.x.y.0/24 (used only inside the namespaces), adds
 * the multicast route `224.0.0.0/4 dev eth0` in each namespace (mDNS), can shape each link with
 * `tc netem`, runs real `llmesh` processes in the namespaces (`ip netns exec <ns> node cli/bin.ts …`),
 * collects their logs (in `logDir`, kept until the next run sweeps it), and ALWAYS deletes what it made: on destroy(), on process exit, on
 * SIGINT/SIGTERM, and stale leftovers of crashed runs are swept by name prefix and dead owner pid.
 * `wanLink` joins a host of this bed to a host of another bed through a router namespace of its
 * own (a WAN link between two sites, shaped with tbf, its bytes read from the router's counters);
 * the router belongs to this bed and is deleted with it (its veths, and so the hosts' `wan0`, too).
 *
 * Needs root and iproute2 (ip, tc); avahi tests need avahi-daemon, avahi-utils and dbus.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { createWriteStream, mkdirSync, readdirSync, rmSync, type WriteStream } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { scaled, waitFor } from '../helpers/index.ts'

const run = promisify(execFile)

/** Name prefix of everything a test bed creates. */
export const NETNS_PREFIX = 'llmt-'
/** Repository root (cli/bin.ts lives there). */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..')

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

const live = new Set<TestBed>()
let hooked = false

function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    for (const bed of live) bed.destroySync()
  })
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const bed of live) bed.destroySync()
      process.kill(process.pid, sig)
    })
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function listNamespaces(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(' ')[0])
      .filter((n) => n !== undefined && n !== '')
  } catch {
    return []
  }
}

function killNamespacePids(ns: string): void {
  let pids: number[] = []
  try {
    pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .split('\n')
      .map((p) => Number(p.trim()))
      .filter((p) => p > 0)
  } catch {
    return
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

function deleteNamespace(ns: string): void {
  killNamespacePids(ns)
  try {
    execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' })
  } catch {
    // already gone
  }
}

/**
 * Deletes namespaces left by crashed runs (prefix match, owner pid dead), and the log directories
 * of finished runs (kept after a run for inspection until the next run). Returns the namespaces.
 */
export function sweepStale(): string[] {
  const out: string[] = []
  for (const d of readdirSync(tmpdir())) {
    const m = /^llmesh-lan-(\d+)-/.exec(d)
    if (m !== null && !pidAlive(Number(m[1]))) rmSync(join(tmpdir(), d), { recursive: true, force: true })
  }
  for (const ns of listNamespaces()) {
    const m = /^llmt-(\d+)-/.exec(ns)
    if (m === null) continue
    if (pidAlive(Number(m[1]))) continue
    deleteNamespace(ns)
    out.push(ns)
  }
  return out
}

/** Options of a test bed. */
export interface TestBedInit {
  /** Number of host namespaces. */
  hosts: number
  /** Shaping per host index (or for all). */
  shaping?: Shaping | ((index: number) => Shaping | undefined)
}

/** K namespaces on a private bridge. */
export class TestBed {
  readonly id: string
  readonly bridgeNs: string
  readonly hosts: Host[] = []
  readonly subnet: string
  readonly logDir: string
  readonly processes: BedProcess[] = []
  private destroyed = false
  private readonly made: string[] = []

  private constructor(id: string, subnet: string, logDir: string) {
    this.id = id
    this.subnet = subnet
    this.bridgeNs = `${NETNS_PREFIX}${id}-br`
    this.logDir = logDir
  }

  /** Creates the namespaces, the bridge and the links. */
  static async create(init: TestBedInit): Promise<TestBed> {
    sweepStale()
    hookExit()
    const id = `${process.pid}-${randomBytes(3).toString('hex')}`
    const subnet = `10.${randomInt(64, 250)}.${randomInt(1, 250)}`
    const logDir = await mkdtemp(join(tmpdir(), `llmesh-lan-${id}-`))
    const bed = new TestBed(id, subnet, logDir)
    live.add(bed)
    try {
      await bed.build(init)
    } catch (err) {
      bed.destroySync()
      throw err
    }
    return bed
  }

  private async ip(...args: string[]): Promise<void> {
    await run('ip', args)
  }

  private async build(init: TestBedInit): Promise<void> {
    await this.ip('netns', 'add', this.bridgeNs)
    this.made.push(this.bridgeNs)
    const br = ['-n', this.bridgeNs]
    await this.ip(...br, 'link', 'set', 'lo', 'up')
    await this.ip(...br, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0')
    await this.ip(...br, 'link', 'set', 'br0', 'up')
    for (let i = 0; i < init.hosts; i++) {
      const ns = `${NETNS_PREFIX}${this.id}-${i}`
      const host: Host = { index: i, ns, ip: `${this.subnet}.${i + 10}` }
      await this.ip('netns', 'add', ns)
      this.made.push(ns)
      // created inside the bridge namespace, the peer end moved straight into the host namespace
      await this.ip(...br, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
      await this.ip(...br, 'link', 'set', `v${i}`, 'master', 'br0')
      await this.ip(...br, 'link', 'set', `v${i}`, 'up')
      await this.ip('-n', ns, 'link', 'set', 'lo', 'up')
      await this.ip('-n', ns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0')
      await this.ip('-n', ns, 'link', 'set', 'eth0', 'up')
      await this.ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
      const shaping = typeof init.shaping === 'function' ? init.shaping(i) : init.shaping
      if (shaping !== undefined) await this.shape(host, shaping)
      this.hosts.push(host)
    }
  }

  /**
   * Applies (replaces) shaping on a host's link: `tbf` for a rate alone, `netem` for delay/loss
   * (some kernels, e.g. this machine's, lack sch_netem: then delay/loss throw, see netemAvailable()).
   */
  async shape(host: Host, s: Shaping): Promise<void> {
    const base = ['-n', host.ns, 'qdisc', 'replace', 'dev', 'eth0', 'root']
    if (s.delay === undefined && s.loss === undefined) {
      if (s.rate === undefined) return
      await run('tc', [...base, 'tbf', 'rate', s.rate, 'burst', '64kb', 'latency', '100ms'])
      return
    }
    const args = [...base, 'netem']
    if (s.delay !== undefined) args.push('delay', s.delay)
    if (s.loss !== undefined) args.push('loss', `${s.loss}%`)
    if (s.rate !== undefined) args.push('rate', s.rate)
    await run('tc', args)
  }

  /**
   * Links `own` (a host of this bed) and `otherHost` (of another bed) through a router namespace:
   * own:wan0 (x.2/30) — wa [router] wb — otherHost:wan0 (x.6/30), each host routing the other's
   * /30 through the router, the router shaping both directions with tbf at `rate`. Multicast is not
   * routed, so mDNS stays inside each bed. The router is this bed's: destroy() deletes it.
   */
  async wanLink(own: Host, otherHost: Host, rate: string): Promise<WanLink> {
    const ns = `${NETNS_PREFIX}${this.id}-wan`
    const net = `192.168.${randomInt(1, 250)}`
    await this.ip('netns', 'add', ns)
    this.made.push(ns)
    try {
      const r = ['-n', ns]
      await this.ip(...r, 'link', 'set', 'lo', 'up')
      await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
      const sides = [
        { host: own, dev: 'wa', me: `${net}.2`, gw: `${net}.1`, peer: `${net}.4/30` },
        { host: otherHost, dev: 'wb', me: `${net}.6`, gw: `${net}.5`, peer: `${net}.0/30` },
      ]
      for (const x of sides) {
        await this.ip(...r, 'link', 'add', x.dev, 'type', 'veth', 'peer', 'name', 'wan0', 'netns', x.host.ns)
        await this.ip(...r, 'addr', 'add', `${x.gw}/30`, 'dev', x.dev)
        await this.ip(...r, 'link', 'set', x.dev, 'up')
        await run('tc', [
          ...r,
          'qdisc',
          'replace',
          'dev',
          x.dev,
          'root',
          'tbf',
          'rate',
          rate,
          'burst',
          '32kb',
          'latency',
          '200ms',
        ])
        await this.ip('-n', x.host.ns, 'addr', 'add', `${x.me}/30`, 'dev', 'wan0')
        await this.ip('-n', x.host.ns, 'link', 'set', 'wan0', 'up')
        await this.ip('-n', x.host.ns, 'route', 'add', x.peer, 'via', x.gw)
      }
    } catch (err) {
      deleteNamespace(ns)
      this.made.splice(this.made.indexOf(ns), 1)
      throw err
    }
    // the other bed's host loses its wan0 when the router goes: a veth pair dies with either end
    return {
      ns,
      ip: `${net}.2`,
      otherIp: `${net}.6`,
      bytes: async () => {
        const { stdout } = await run('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', 'wa'])
        const [link] = JSON.parse(stdout) as Array<{ stats64: { rx: { bytes: number }; tx: { bytes: number } } }>
        return (link?.stats64.rx.bytes ?? 0) + (link?.stats64.tx.bytes ?? 0)
      },
    }
  }

  /** Runs a command in a namespace and returns its output. */
  async exec(
    host: Host,
    cmd: string,
    args: string[],
    timeoutMs = 30_000,
    env: NodeJS.ProcessEnv = {},
  ): Promise<{ stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', host.ns, cmd, ...args], {
      timeout: scaled(timeoutMs),
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, ...env },
    })
  }

  /** Starts a long-running process in a namespace; stderr JSON lines are parsed into `logs`. */
  spawn(host: Host, name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): BedProcess {
    mkdirSync(this.logDir, { recursive: true })
    const logFile = join(this.logDir, `${name}.log`)
    const out: WriteStream = createWriteStream(logFile)
    const child = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const p: BedProcess = {
      host,
      name,
      child,
      logs: [],
      stdout: '',
      stderr: '',
      logFile,
      exited: new Promise((resolveExit) => child.once('exit', (code, signal) => resolveExit({ code, signal }))),
    }
    let partial = ''
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      p.stderr += chunk
      out.write(chunk)
      const lines = (partial + chunk).split('\n')
      partial = lines.pop() ?? ''
      for (const l of lines) {
        if (!l.startsWith('{')) continue
        try {
          p.logs.push(JSON.parse(l) as LogLine)
        } catch {
          // not JSON
        }
      }
    })
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      p.stdout += chunk
    })
    child.once('exit', () => out.end())
    this.processes.push(p)
    return p
  }

  /** Starts `llmesh <args>` (the repo's CLI under this Node) in a namespace. */
  llmesh(host: Host, name: string, args: string[], env: NodeJS.ProcessEnv = {}): BedProcess {
    return this.spawn(host, name, process.execPath, [join(REPO_ROOT, 'cli', 'bin.ts'), ...args], env)
  }

  /** Sends SIGTERM and waits for the exit (SIGKILL after `timeoutMs`). */
  async terminate(p: BedProcess, timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM')
    const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs)
    const r = await p.exited
    clearTimeout(timer)
    return r
  }

  /** Stops every process and deletes every namespace. Idempotent. */
  async destroy(): Promise<void> {
    await Promise.all(this.processes.map((p) => this.terminate(p, 5_000)))
    this.destroySync()
  }

  /** Synchronous cleanup for exit/signal handlers. */
  destroySync(): void {
    if (this.destroyed) return
    this.destroyed = true
    for (const p of this.processes) {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        try {
          p.child.kill('SIGKILL')
        } catch {
          // gone
        }
      }
    }
    for (const ns of [...this.made].reverse()) deleteNamespace(ns)
    live.delete(this)
  }
}

/** Waits until `check` holds (polling every 50 ms, a throw counting as not yet), with `timeoutMs` scaled for a loaded machine (test/helpers). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  // a check that throws (a curl timing out while the machine is loaded) is "not yet": it is asked
  // again until the deadline, and the timeout names its last error
  let last: string | undefined
  const tolerant = async (): Promise<boolean> => {
    try {
      return await check()
    } catch (err) {
      last = String((err as Error)?.message ?? err).slice(0, 400)
      return false
    }
  }
  await waitFor(tolerant, { timeoutMs, what, intervalMs: 50, detail: () => ({ lastError: last }) })
}

/** Log lines that mean something went wrong: level >= 50 or an uncaught/unhandled error. */
export function badLines(p: BedProcess): string[] {
  const bad = p.logs.filter((l) => (l.level ?? 0) >= 50 || /uncaught|unhandled/i.test(String(l.msg ?? '')))
  const raw = p.stderr.split('\n').filter((l) => !l.startsWith('{') && /uncaught|unhandled/i.test(l))
  return [...bad.map((l) => JSON.stringify(l)), ...raw]
}

/** Whether the kernel has sch_netem (delay/loss shaping); checked in a throwaway namespace. */
export function netemAvailable(): boolean {
  const ns = `${NETNS_PREFIX}${process.pid}-probe`
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'ignore' })
    execFileSync('ip', ['-n', ns, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'a1'], { stdio: 'ignore' })
    execFileSync('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'a0', 'root', 'netem', 'delay', '1ms'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  } finally {
    deleteNamespace(ns)
  }
}

/** Whether the machine can run the bed (root and `ip netns`). */
export function canRunBed(): boolean {
  let why: string | undefined
  if (process.getuid?.() !== 0) why = 'needs root'
  else {
    try {
      execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' })
    } catch {
      why = 'needs `ip netns` (Debian iproute2)'
    }
  }
  if (why === undefined) return true
  // Under CI the LAN tier must run: a skipped tier would hide a broken install step.
  if (process.env.CI === 'true') throw new Error(`CI=true but the LAN test bed cannot run: ${why}`)
  process.stderr.write(`# LAN test bed skipped: ${why}\n`)
  return false
}
