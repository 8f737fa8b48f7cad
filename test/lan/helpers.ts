/**
 * Helpers for LAN tests: a fleet on disk, llmesh daemons in namespaces, their node.json and
 * /status (read with `llmesh status` run inside the namespace), and signed test messages.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKey } from '@libp2p/pnet'
import type { NodeStatus } from '../../node/api/status.ts'
import { type Fleet, initFleet, loadFleet } from '../../node/fleet/index.ts'
import { type ReleaseManifest, signOperatorMessage } from '../../protocols/index.ts'
import { createInvite } from '../../protocols/membership/index.ts'
import { type BedProcess, type Host, REPO_ROOT, type TestBed, until } from './netns.ts'

/** A running llmesh daemon in the bed. */
export interface LanNode {
  proc: BedProcess
  host: Host
  dataDir: string
  info: { peerId: string; multiaddrs: string[]; api: string }
}

/** Creates a fleet directory under `dir`. */
export async function makeFleetDir(dir: string): Promise<Fleet> {
  return initFleet(join(dir, 'fleet'), { fleetId: 'lan-fleet' })
}

/** Writes a fresh swarm key (a different join secret) and returns its path. */
export async function foreignSwarmKey(dir: string): Promise<string> {
  const key = new Uint8Array(95)
  generateKey(key)
  const path = join(dir, 'foreign-swarm.key')
  await writeFile(path, key, { mode: 0o600 })
  return path
}

/** The `llmesh node|seed start` arguments of a LAN node: libp2p on 4001, the API on the host's address. */
export function startArgs(
  host: Host,
  opts: { role: 'node' | 'seed'; fleetDir: string; dataDir: string; extra?: string[] },
): string[] {
  return [
    opts.role,
    'start',
    '--fleet',
    opts.fleetDir,
    '--data',
    opts.dataDir,
    '--listen',
    '/ip4/0.0.0.0/tcp/4001',
    '--api',
    `${host.ip}:7420`,
    // the bed's namespaces are its own network: the tests call every node's API from other hosts with no token
    '--api-insecure',
    ...(opts.extra ?? []),
  ]
}

/**
 * An invite file for a device (the tags it declares with `--tags` in `extra`), signed with the
 * fleet directory's operator key, as `llmesh device invite --fleet` writes it; its path.
 */
export async function inviteFor(fleetDir: string, dataDir: string, extra: readonly string[] = []): Promise<string> {
  const i = extra.indexOf('--tags')
  const tags = i < 0 ? [] : (extra[i + 1] ?? '').split(',').filter((t) => t !== '')
  const fleet = await loadFleet(fleetDir)
  if (fleet.operatorSigner === undefined) throw new Error(`${fleetDir} holds no operator key`)
  const { file } = await createInvite(
    { fleet: fleet.root.fleet, tags, ttlMs: 3_600_000, now: Date.now() },
    fleet.operatorSigner,
  )
  const path = `${dataDir}.invite`
  await writeFile(path, JSON.stringify(file), { mode: 0o600 })
  return path
}

/**
 * Starts `llmesh node|seed start` on a host (mDNS on unless `extra` says otherwise) and waits for
 * node.json. A device joins with an invite of the tags it declares unless `invite: false` (then it
 * stays pending until the operator approves it).
 */
export async function startLanNode(
  bed: TestBed,
  host: Host,
  opts: {
    role: 'node' | 'seed'
    fleetDir: string
    dataDir: string
    name: string
    extra?: string[]
    invite?: boolean
    /** LLMESH_LOG_LEVEL (default `info`). */
    logLevel?: string
  },
): Promise<LanNode> {
  const invite =
    opts.role === 'node' && opts.invite !== false
      ? ['--invite', await inviteFor(opts.fleetDir, opts.dataDir, opts.extra)]
      : []
  const args = startArgs(host, { ...opts, extra: [...(opts.extra ?? []), ...invite] })
  const proc = bed.llmesh(host, opts.name, args, { LLMESH_LOG_LEVEL: opts.logLevel ?? 'info' })
  await until(
    () => proc.logs.some((l) => l.msg === 'llmesh node started') || proc.child.exitCode !== null,
    30_000,
    `${opts.name} to start`,
  )
  if (proc.child.exitCode !== null) throw new Error(`${opts.name} exited: ${proc.stderr}`)
  const info = JSON.parse(await readFile(join(opts.dataDir, 'node.json'), 'utf8')) as LanNode['info']
  return { proc, host, dataDir: opts.dataDir, info }
}

/** `llmesh status --json` run inside the node's namespace. */
export async function lanStatus(bed: TestBed, n: LanNode): Promise<NodeStatus> {
  const { stdout } = await bed.exec(n.host, process.execPath, [
    join(REPO_ROOT, 'cli', 'bin.ts'),
    'status',
    '--api',
    n.info.api,
    '--json',
  ])
  return JSON.parse(stdout) as NodeStatus
}

/** A signed release announcement (manifest of a file that need not exist). */
export async function signedRelease(fleet: Fleet, seq: number, now = Date.now()): Promise<Uint8Array> {
  const manifest: ReleaseManifest = {
    type: 'ReleaseManifest',
    v: 1,
    fleet: fleet.root.fleet,
    model: 'tiny',
    version: `1.${seq}.0+gguf-q4_0-x64`,
    seq,
    file: { size: 1024, sha256: 'ab'.repeat(32), format: 'gguf', quantization: 'q4_0', model_arch: 'llama' },
    architectures: ['x64'],
    runtime: '>=3.0.0',
    min_ram_mb: 64,
    chunks: {
      feed: 'cd'.repeat(32),
      feed_length: 1,
      chunking: { algo: 'fastcdc', min: 16384, avg: 65536, max: 262144 },
      chunks: [{ hash: 'ab'.repeat(32), block: 0, size: 1024 }],
    },
    policy: {
      stages: [{ name: 'all', percent: 100, min_devices: 0, tags: [], window_ms: 0 }],
      gates: { min_reports: 1 },
      exclude_tags: [],
      inconclusive: 'hold',
      prestage: true,
    },
    provenance: { approved_by: ['lan-test'] },
    created_at: now - 1000,
    expires_at: now + 86_400_000,
  }
  if (fleet.operatorSigner === undefined) throw new Error('fleet has no operator key')
  return signOperatorMessage(manifest, fleet.operatorSigner)
}

/** The time a process logged acceptance of a digest, if it did. */
export function acceptedAt(p: BedProcess, digest: string): number | undefined {
  return p.logs.find((l) => l.msg === 'message accepted' && l.digest === digest)?.time
}

/** JSON lines an injector printed. */
export function injectorEvents(p: BedProcess): Array<Record<string, unknown>> {
  return p.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

/** Starts the injector in a namespace. */
export function startInjector(bed: TestBed, host: Host, name: string, args: string[]): BedProcess {
  return bed.spawn(host, name, process.execPath, [join(REPO_ROOT, 'test', 'lan', 'injector.ts'), ...args])
}

/** Waits until the injector printed `done`. */
export async function injectorDone(p: BedProcess, timeoutMs = 30_000): Promise<Array<Record<string, unknown>>> {
  await until(
    () => injectorEvents(p).some((e) => e.event === 'done') || p.child.exitCode !== null,
    timeoutMs,
    `${p.name} done`,
  )
  return injectorEvents(p)
}

/** What `decisionsLater` reads of a status: the rollout controller's tick counter. */
type TickStatus = object
const ticksOf = (s: TickStatus) => (s as { rollout?: { counters?: { ticks?: number } } }).rollout?.counters?.ticks ?? 0

/** How long `decisionsLater` waits. */
export interface DecisionsLater {
  /** More decisions (ticks) each node must make (default 4). */
  count?: number
  /** Protocol time that must also pass (a stage window, report intervals), in ms. */
  atLeastMs?: number
  what?: string
}

/**
 * Waits until every node has decided `count` more times than now (its rollout controller's tick
 * counter, /status → rollout.counters.ticks: once a second and on new messages) and `atLeastMs`
 * of protocol time has passed: "several decisions later" as a condition the nodes themselves
 * reach, for checks that something did NOT happen. A fixed sleep is too short on a loaded
 * machine, where the nodes may not have decided at all in it.
 */
export async function decisionsLater<T>(
  nodes: readonly T[],
  status: (n: T) => Promise<TickStatus>,
  opts: DecisionsLater = {},
): Promise<void> {
  const { count = 4, atLeastMs = 0 } = opts
  const t0 = Date.now()
  const from = await Promise.all(nodes.map(async (n) => ticksOf(await status(n))))
  await until(
    async () =>
      Date.now() - t0 >= atLeastMs &&
      (await Promise.all(nodes.map(status))).every((s, i) => ticksOf(s) >= from[i] + count),
    atLeastMs + count * 15_000,
    opts.what ?? `${count} more decisions on every node`,
  )
}
