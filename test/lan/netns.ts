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
import { execFile, spawn } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { launcherSettings } from '../../packaging/constants.ts'
import { scaled } from '../helpers/index.ts'
import { deleteNamespace, NETNS_PREFIX, sweepStale, trackBed, untrackBed } from './netns-cleanup.ts'
import { NamespaceProbe } from './netns-probe.ts'
import type { BedProcess, Host, LogLine, Shaping, WanLink } from './netns-types.ts'

export { until } from './netns-checks.ts'
export { canRunBed, NETNS_PREFIX, netemAvailable, sweepStale } from './netns-cleanup.ts'
export type { BedProcess, Host, LogLine, Shaping, WanLink } from './netns-types.ts'

const run = promisify(execFile)

/** Repository root (cli/bin.ts lives there). */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..')

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
  private readonly probes = new Map<string, NamespaceProbe>()

  private constructor(id: string, subnet: string, logDir: string) {
    this.id = id
    this.subnet = subnet
    this.bridgeNs = `${NETNS_PREFIX}${id}-br`
    this.logDir = logDir
  }

  /** Creates the namespaces, the bridge and the links. */
  static async create(init: TestBedInit): Promise<TestBed> {
    sweepStale()
    const id = `${process.pid}-${randomBytes(3).toString('hex')}`
    const subnet = `10.${randomInt(64, 250)}.${randomInt(1, 250)}`
    const logDir = await mkdtemp(join(tmpdir(), `llmesh-lan-${id}-`))
    const bed = new TestBed(id, subnet, logDir)
    trackBed(bed)
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

  /**
   * GETs `url` from inside `host`'s namespace and returns the body; throws as `curl -sf` fails (no
   * answer within `timeoutMs`, scaled; a status ≥ 400). Through the namespace's long-lived probe
   * (test/lan/netns-probe.ts): the tests poll nodes many times a second, and a fork of `ip` and
   * `curl` per poll was a tenth of a LAN test's CPU.
   */
  get(host: Host, url: string, timeoutMs = 10_000): Promise<string> {
    let probe = this.probes.get(host.ns)
    if (probe === undefined) {
      probe = new NamespaceProbe(host.ns)
      this.probes.set(host.ns, probe)
    }
    return probe.get(url, scaled(timeoutMs))
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

  /**
   * Starts `llmesh <args>` (the repo's CLI under this Node) in a namespace, with what the package's
   * launcher gives it (a daemon: its Node flags and MALLOC_ARENA_MAX, packaging/constants.ts).
   */
  llmesh(host: Host, name: string, args: string[], env: NodeJS.ProcessEnv = {}): BedProcess {
    const launcher = launcherSettings(args)
    return this.spawn(host, name, process.execPath, [...launcher.flags, join(REPO_ROOT, 'cli', 'bin.ts'), ...args], {
      ...launcher.env,
      ...env,
    })
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
    await Promise.all([
      ...this.processes.map((p) => this.terminate(p, 5_000)),
      ...[...this.probes.values()].map((p) => p.stop()),
    ])
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
    for (const probe of this.probes.values()) probe.kill()
    for (const ns of [...this.made].reverse()) deleteNamespace(ns)
    untrackBed(this)
  }
}

/** Log lines that mean something went wrong: level >= 50 or an uncaught/unhandled error. */
export function badLines(p: BedProcess): string[] {
  const bad = p.logs.filter((l) => (l.level ?? 0) >= 50 || /uncaught|unhandled/i.test(String(l.msg ?? '')))
  const raw = p.stderr.split('\n').filter((l) => !l.startsWith('{') && /uncaught|unhandled/i.test(l))
  return [...bad.map((l) => JSON.stringify(l)), ...raw]
}
