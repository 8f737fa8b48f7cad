/**
 * avahi inside a test bed: makes sure the system D-Bus runs (starts `dbus-daemon --system` when
 * its socket is missing; it is left running, as other tools may use it), then runs avahi-daemon
 * in one namespace (`--no-drop-root --no-chroot`, a private config so it only uses that
 * namespace's interfaces) and `avahi-browse -rtp` there.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type BedProcess, type Host, type TestBed, until } from './netns.ts'

const BUS_SOCKET = '/run/dbus/system_bus_socket'

/** Whether avahi-daemon, avahi-browse and dbus-daemon are installed. */
export function avahiInstalled(): boolean {
  try {
    for (const b of ['avahi-daemon', 'avahi-browse', 'dbus-daemon']) execFileSync('which', [b], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Starts the system bus if its socket is absent. */
export async function ensureSystemBus(): Promise<void> {
  if (existsSync(BUS_SOCKET)) return
  mkdirSync('/run/dbus', { recursive: true })
  execFileSync('dbus-daemon', ['--system', '--fork'], { stdio: 'ignore' })
  await until(() => existsSync(BUS_SOCKET), 5_000, 'the system D-Bus socket')
}

/** Runs avahi-daemon inside `host`'s namespace and waits until it is up. */
export async function startAvahi(bed: TestBed, host: Host): Promise<BedProcess> {
  await ensureSystemBus()
  const conf = join(bed.logDir, 'avahi-daemon.conf')
  await writeFile(
    conf,
    [
      '[server]',
      `host-name=avahi-${bed.id}`,
      'use-ipv4=yes',
      'use-ipv6=no',
      'allow-interfaces=eth0',
      'ratelimit-interval-usec=1000000',
      'ratelimit-burst=1000',
      '[wide-area]',
      'enable-wide-area=no',
      '[publish]',
      'publish-hinfo=no',
      'publish-workstation=no',
      '',
    ].join('\n'),
  )
  const p = bed.spawn(host, 'avahi-daemon', 'avahi-daemon', [
    '--no-drop-root',
    '--no-chroot',
    '--no-rlimits',
    '-f',
    conf,
  ])
  await until(
    () => /Server startup complete/.test(p.stderr) || p.child.exitCode !== null,
    15_000,
    'avahi-daemon to start',
  )
  if (p.child.exitCode !== null) throw new Error(`avahi-daemon exited: ${p.stderr}`)
  return p
}

/** One resolved `_llmesh._tcp` service from `avahi-browse -rtp`. */
export interface BrowsedService {
  name: string
  host: string
  address: string
  port: number
  txt: Record<string, string>
}

/** Runs `avahi-browse -rtp _llmesh._tcp` in the namespace and parses resolved (`=`) lines. */
export async function browse(bed: TestBed, host: Host): Promise<BrowsedService[]> {
  const { stdout } = await bed.exec(host, 'avahi-browse', ['-rtp', '_llmesh._tcp'], 30_000)
  const out: BrowsedService[] = []
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('=')) continue
    // =;eth0;IPv4;name;_llmesh._tcp;local;host;address;port;"k=v" "k=v"
    const f = line.split(';')
    const txt: Record<string, string> = {}
    for (const m of (f.slice(9).join(';') ?? '').matchAll(/"([^"=]*)=([^"]*)"/g)) txt[m[1]] = m[2]
    out.push({ name: f[3].replace(/\\032/g, ' '), host: f[6], address: f[7], port: Number(f[8]), txt })
  }
  return out
}
