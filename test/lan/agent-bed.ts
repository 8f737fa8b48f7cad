/**
 * Nodes of a LAN bed that run from an installed package, for the agent-update LAN test: each
 * namespace gets its own root made by the package's own `install.sh --root <root>` (so
 * `<root>/opt/llmesh/<version>`, `current`, `<root>/etc/llmesh` and `<root>/var/lib/llmesh` are
 * what a device holds), its settings in `<root>/etc/llmesh/llmesh.yaml`, and is started as the
 * systemd units start it, without systemd: a device through the installed wrapper
 * (`<root>/opt/llmesh/current/bin/llmesh agent run --config … -- node start --config … --data …`)
 * with the installed unit's `Environment=` (LLMESH_AGENT_HANDOVER: the wrapper execs the daemon),
 * the seed with `seed start`. Also the packages the test publishes: the built one with only its
 * version bumped (MANIFEST.json and app/package.json), and the checks of what a device ran.
 */
import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, readlink, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { AGENT_ENTRY, CURRENT_LINK } from '../../node/agent-update/constants.ts'
import type { LanNode } from './helpers.ts'
import { type Host, type TestBed, until } from './netns.ts'

const run = promisify(execFile)

/** A node running from its own installed root. */
export interface InstalledNode extends LanNode {
  name: string
  root: string
  /** `<root>/opt/llmesh`: the agent root. */
  opt: string
  role: 'node' | 'seed'
  /** How many times it was started (its log files are `<name>`, `<name>-run2`, …). */
  runs: number
}

/** Unpacks a package tarball under `dir`; returns its top directory. */
export async function extractPackage(tarball: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', dir])
  const [top] = await readdir(dir)
  if (top === undefined) throw new Error(`${tarball}: empty`)
  return join(dir, top)
}

/**
 * The package of `tarball` with only its version changed to `version` (MANIFEST.json and
 * app/package.json, so `llmesh --version` says it): `<out>/llmesh-<version>-linux-<arch>.tar.gz`.
 */
export async function bumpedPackage(tarball: string, work: string, from: string, version: string): Promise<string> {
  const dir = join(work, `bump-${version}`)
  const top = await extractPackage(tarball, dir)
  const stem = top.slice(dir.length + 1).replace(`llmesh-${from}-`, `llmesh-${version}-`)
  for (const f of ['MANIFEST.json', join('app', 'package.json')]) {
    const text = await readFile(join(top, f), 'utf8')
    const bumped = text.replace(`"version": "${from}"`, `"version": "${version}"`)
    if (bumped === text) throw new Error(`${f}: no version ${from}`)
    await writeFile(join(top, f), bumped)
  }
  await rename(top, join(dir, stem))
  const out = join(work, `${stem}.tar.gz`)
  await run('tar', ['-I', 'gzip -1', '-cf', out, '-C', dir, stem], { maxBuffer: 1 << 20 })
  return out
}

/** YAML of a settings mapping, one `key: <JSON value>` line each (JSON values are YAML). */
function yaml(settings: Record<string, unknown>): string {
  return `${Object.entries(settings)
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
    .join('\n')}\n`
}

/**
 * Installs the package at `pkgDir` under `<work>/root-<name>` with its install.sh run inside the
 * host's namespace (`--fleet`, and `--seed` or `--invite`), after writing the node's settings to
 * `<root>/etc/llmesh/llmesh.yaml` (install.sh keeps an existing one and points it at the invite).
 */
export async function installNode(
  bed: TestBed,
  host: Host,
  opts: {
    name: string
    role: 'node' | 'seed'
    pkgDir: string
    work: string
    fleetDir: string
    invite?: string
    settings: Record<string, unknown>
  },
): Promise<InstalledNode> {
  const root = join(opts.work, `root-${opts.name}`)
  const etc = join(root, 'etc', 'llmesh')
  await mkdir(etc, { recursive: true })
  const opt = join(root, 'opt', 'llmesh')
  const settings = { fleet: '.', ...opts.settings, ...(opts.role === 'node' ? { agent_root: opt } : {}) }
  await writeFile(join(etc, 'llmesh.yaml'), yaml(settings))
  const args = ['--root', root, '--fleet', opts.fleetDir]
  if (opts.role === 'seed') args.push('--seed')
  if (opts.invite !== undefined) args.push('--invite', opts.invite)
  await bed.exec(host, join(opts.pkgDir, 'install.sh'), args, 120_000)
  const data = join(root, 'var', 'lib', opts.role === 'seed' ? 'llmesh-seed' : 'llmesh')
  const info = { peerId: '', multiaddrs: [], api: `http://${host.ip}:7420` }
  return { name: opts.name, role: opts.role, root, opt, host, dataDir: data, info, runs: 0, proc: undefined as never }
}

/**
 * Starts an installed node as its unit does (a device under the installed wrapper) and waits for
 * its daemon's `llmesh node started` and node.json.
 */
export async function startInstalled(bed: TestBed, n: InstalledNode): Promise<InstalledNode> {
  n.runs++
  const conf = join(n.root, 'etc', 'llmesh', 'llmesh.yaml')
  const bin = join(n.opt, CURRENT_LINK, AGENT_ENTRY)
  const daemon = [n.role, 'start', '--config', conf, '--data', n.dataDir]
  const args = n.role === 'node' ? ['agent', 'run', '--config', conf, '--', ...daemon] : daemon
  const name = n.runs === 1 ? n.name : `${n.name}-run${n.runs}`
  n.proc = bed.spawn(n.host, name, bin, args, await unitEnv(n))
  const started = () => n.proc.logs.filter((l) => l.msg === 'llmesh node started').length
  await until(() => started() > 0 || n.proc.child.exitCode !== null, 60_000, `${name} to start`)
  if (n.proc.child.exitCode !== null) throw new Error(`${name} exited: ${n.proc.stderr.slice(-3000)}`)
  n.info = { ...n.info, ...(JSON.parse(await readFile(join(n.dataDir, 'node.json'), 'utf8')) as LanNode['info']) }
  return n
}

/** The `Environment=` settings of the node's installed unit (`<root>/etc/systemd/system/llmesh-<role>.service`). */
export async function unitEnv(n: InstalledNode): Promise<Record<string, string>> {
  const unit = join(n.root, 'etc', 'systemd', 'system', `llmesh-${n.role}.service`)
  const text = await readFile(unit, 'utf8')
  const out: Record<string, string> = {}
  for (const m of text.matchAll(/^Environment=([A-Z_]+)=(\S*)$/gm)) out[m[1]] = m[2]
  return out
}

/** The version `<opt>/current` names. */
export const currentOf = (n: InstalledNode) => readlink(join(n.opt, CURRENT_LINK))

/** Versions installed side by side under the node's agent root. */
export async function versionsOf(n: InstalledNode): Promise<string[]> {
  const all = await readdir(n.opt, { withFileTypes: true })
  return all
    .filter((e) => e.isDirectory() && /^\d/.test(e.name))
    .map((e) => e.name)
    .sort()
}

/** Every version the node's wrapper started (its `starting agent` log lines, over every run), in order. */
export function versionsStarted(
  n: InstalledNode,
  all: readonly { name: string; logs: Array<Record<string, unknown>> }[],
): string[] {
  return all
    .filter((p) => p.name === n.name || p.name.startsWith(`${n.name}-run`))
    .flatMap((p) => p.logs.filter((l) => l.msg === 'starting agent').map((l) => String(l.version)))
}

/**
 * The node's processes of the package's CLI in its namespace, by PID: `daemon` (`node start`) and
 * `wrapper` (`agent run`). In the steady state (no version on probation) a device has one process,
 * its unit's main process: the wrapper exec'd the daemon in its place.
 */
export async function cliProcesses(n: InstalledNode): Promise<{ daemon: number[]; wrapper: number[] }> {
  const { stdout } = await run('ip', ['netns', 'pids', n.host.ns])
  const out = { daemon: [] as number[], wrapper: [] as number[] }
  for (const pid of stdout.split('\n').filter((p) => p.trim() !== '')) {
    const argv = (await readFile(`/proc/${pid.trim()}/cmdline`, 'utf8').catch(() => '')).split('\0')
    const i = argv.findIndex((a) => a.endsWith(join('cli', PACKAGED_ENTRY)))
    if (i <= 0) continue
    if (argv[i + 1] === 'node' && argv[i + 2] === 'start') out.daemon.push(Number(pid))
    if (argv[i + 1] === 'agent' && argv[i + 2] === 'run') out.wrapper.push(Number(pid))
  }
  return out
}

/** The CLI entry file inside an installed package (compiled; `.ts` is for development only). */
export const PACKAGED_ENTRY = 'bin.js'

/**
 * The program files the node's daemon processes run right now, read from /proc: the paths of the
 * `app/cli/bin.js` of the version each runs (`<opt>/<version>/app/cli/bin.js`: the package ships
 * compiled JavaScript).
 */
export async function runningEntries(n: InstalledNode): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'pids', n.host.ns])
  const out: string[] = []
  for (const pid of stdout.split('\n').filter((p) => p.trim() !== '')) {
    const argv = (await readFile(`/proc/${pid.trim()}/cmdline`, 'utf8').catch(() => '')).split('\0')
    // the daemon: `<node> [flags] <entry> node start …` (the wrapper's own argv is `<entry> agent run …`)
    const i = argv.findIndex((a) => a.endsWith(join('cli', PACKAGED_ENTRY)))
    if (i > 0 && argv[i + 1] === 'node' && argv[i + 2] === 'start') out.push(argv[i])
  }
  return out
}
