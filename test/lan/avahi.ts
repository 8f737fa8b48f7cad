/**
 * avahi inside a test bed: a private D-Bus (a `dbus-daemon` of the bed's own, its socket in the
 * bed's log folder: the machine's system bus is neither needed nor touched; a machine image may
 * carry a stale system bus socket with no daemon behind it), then avahi-daemon in one namespace
 * (`--no-drop-root --no-chroot`, a private config so it only uses that namespace's interfaces)
 * and `avahi-browse -rtp` there, both pointed at the private bus by DBUS_SYSTEM_BUS_ADDRESS.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type BedProcess, type Host, type TestBed, until } from './netns.ts'

/** Whether avahi-daemon, avahi-browse and dbus-daemon are installed. */
export function avahiInstalled(): boolean {
  try {
    for (const b of ['avahi-daemon', 'avahi-browse', 'dbus-daemon']) execFileSync('which', [b], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const busSocket = (bed: TestBed): string => join(bed.logDir, 'dbus.sock')
const busEnv = (bed: TestBed): NodeJS.ProcessEnv => ({ DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${busSocket(bed)}` })

/** Starts the bed's private bus (idempotent); the bed stops it on destroy. */
export async function startPrivateBus(bed: TestBed): Promise<void> {
  const socket = busSocket(bed)
  if (existsSync(socket)) return
  const conf = join(bed.logDir, 'dbus.conf')
  await writeFile(
    conf,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=${socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`,
  )
  const p = bed.spawn(bed.hosts[0], 'dbus-daemon', 'dbus-daemon', [`--config-file=${conf}`, '--nofork', '--nopidfile'])
  await until(() => existsSync(socket) || p.child.exitCode !== null, 10_000, 'the private D-Bus socket')
  if (p.child.exitCode !== null) throw new Error(`dbus-daemon exited: ${p.stderr}`)
}

/** Runs avahi-daemon inside `host`'s namespace and waits until it is up. */
export async function startAvahi(bed: TestBed, host: Host): Promise<BedProcess> {
  await startPrivateBus(bed)
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
  const p = bed.spawn(
    host,
    'avahi-daemon',
    'avahi-daemon',
    ['--no-drop-root', '--no-chroot', '--no-rlimits', '-f', conf],
    busEnv(bed),
  )
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
  const { stdout } = await bed.exec(host, 'avahi-browse', ['-rtp', '_llmesh._tcp'], 30_000, busEnv(bed))
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
