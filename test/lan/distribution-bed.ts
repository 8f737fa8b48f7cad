/**
 * Helpers of the LAN distribution tests: daemons started in a namespace (optionally with a small
 * tmpfs under their models directory, mounted in a private mount namespace of the daemon itself so
 * it vanishes with the process), /status read with curl inside the namespace (cheaper than a CLI
 * process per poll), releases published with `llmesh release publish`, and link shaping on the
 * bridge side (a host's ingress).
 */

import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { NodeStatus } from '../../node/api/status.ts'
import type { ModelInstallState } from '../../node/install/installer.ts'
import type { ReplicationStats } from '../../node/store/replicator.ts'
import { launcherSettings } from '../../packaging/constants.ts'
import type { ReleaseManifest } from '../../protocols/schemas/index.ts'
import { inviteFor, type LanNode, startArgs } from './helpers.ts'
import { type Host, REPO_ROOT, type TestBed, until } from './netns.ts'

const run = promisify(execFile)
export const BIN = join(REPO_ROOT, 'cli', 'bin.ts')

/** Tag every test device carries. */
export const DEVICE_TAG = 'lan'
/** A policy excluding every test device: releases are prestaged (downloaded, verified, staged), never activated. */
export const HOLD_POLICY = `
stages:
  - { name: full, percent: 100, window: 24h }
gates:
  min_reports: 1
exclude_tags: [${DEVICE_TAG}, seed]
prestage: true
`
/** One stage with every device: activated everywhere (through the rollout controller). */
export const ALL_POLICY = `
stages:
  - { name: full, percent: 100, window: 1s }
gates:
  min_reports: 0
`

/** /status of a device with the sections distribution adds. */
export type DistStatus = NodeStatus & {
  models: Record<string, ModelInstallState>
  replication?: ReplicationStats
}

/** Starts `llmesh node|seed start`; with `tmpfsMiB`, `<data>/models` is a private tmpfs of that size. */
export async function startNode(
  bed: TestBed,
  host: Host,
  opts: {
    role: 'node' | 'seed'
    fleetDir: string
    dataDir: string
    name: string
    tmpfsMiB?: number
    extra?: string[]
    env?: NodeJS.ProcessEnv
    /** Script run instead of cli/bin.ts (a test entry wrapping the CLI, e.g. with a fault). */
    entry?: string
    /** A device joins with an invite of the tags it declares (default); false: it stays pending. */
    invite?: boolean
  },
): Promise<LanNode> {
  const invite =
    opts.role === 'node' && opts.invite !== false
      ? ['--invite', await inviteFor(opts.fleetDir, opts.dataDir, opts.extra)]
      : []
  const argv = startArgs(host, { ...opts, extra: [...(opts.extra ?? []), ...invite] })
  // what the package's launcher gives a daemon (its Node flags and MALLOC_ARENA_MAX), as bed.llmesh()
  const launcher = launcherSettings(argv)
  const args = [...launcher.flags, opts.entry ?? BIN, ...argv]
  const env = { ...launcher.env, LLMESH_LOG_LEVEL: 'info', ...opts.env }
  let proc: LanNode['proc']
  if (opts.tmpfsMiB === undefined) {
    proc = bed.spawn(host, opts.name, process.execPath, args, env)
  } else {
    const models = join(opts.dataDir, 'models')
    await mkdir(models, { recursive: true })
    // a mount namespace of the daemon's own: the tmpfs is gone when the process is
    const script = 'mount -t tmpfs -o "size=$2m" llmesh-test "$1" && shift 2 && exec "$@"'
    proc = bed.spawn(
      host,
      opts.name,
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
        'sh',
        models,
        String(opts.tmpfsMiB),
        process.execPath,
        ...args,
      ],
      env,
    )
  }
  const marker = join(opts.dataDir, 'node.json')
  const started = proc.logs.length
  await until(
    () => proc.logs.slice(started).some((l) => l.msg === 'llmesh node started') || proc.child.exitCode !== null,
    45_000,
    `${opts.name} to start`,
  )
  if (proc.child.exitCode !== null) throw new Error(`${opts.name} exited: ${proc.stderr}`)
  const info = JSON.parse(await readFile(marker, 'utf8')) as LanNode['info']
  return { proc, host, dataDir: opts.dataDir, info }
}

/** GET /status over HTTP from inside the node's namespace. */
export async function httpStatus(bed: TestBed, n: LanNode): Promise<DistStatus> {
  return JSON.parse(await bed.get(n.host, `${apiUrl(n)}/status`, 5_000)) as DistStatus
}

/** Bytes this node received through replication since it started. */
export function bytesIn(s: DistStatus): number {
  return s.replication?.bytesIn ?? 0
}

/** Publishes a file through the seed with `llmesh release publish … --json`. */
export async function publishRelease(
  bed: TestBed,
  seed: LanNode,
  file: string,
  opts: { model: string; version: string; policy: string; arch?: string },
): Promise<{ manifest: ReleaseManifest; new_chunks: number; new_bytes: number }> {
  const pol = `${file}.policy.yaml`
  await writeFile(pol, opts.policy)
  const args = [BIN, 'release', 'publish', file, '--model', opts.model, '--version', opts.version]
  args.push('--policy', pol, '--approved-by', 'lan-test', '--json', '--api', seed.info.api)
  if (opts.arch !== undefined) args.push('--arch', opts.arch)
  const { stdout } = await bed.exec(seed.host, process.execPath, args, 120_000)
  return JSON.parse(stdout) as { manifest: ReleaseManifest; new_chunks: number; new_bytes: number }
}

/** Waits until every node has `model@version` staged. */
export async function untilStaged(bed: TestBed, nodes: LanNode[], model: string, version: string, ms: number) {
  await until(
    async () =>
      (await Promise.all(nodes.map((n) => httpStatus(bed, n)))).every((s) => s.models[model]?.staged.includes(version)),
    ms,
    `${model}@${version} staged on ${nodes.map((n) => n.proc.name).join(', ')}`,
  )
}

/** Shapes what a host RECEIVES (tbf on the bridge-side veth of the host). */
export async function shapeIngress(bed: TestBed, host: Host, rate: string, burst = '32kb'): Promise<void> {
  await run('tc', [
    '-n',
    bed.bridgeNs,
    'qdisc',
    'replace',
    'dev',
    `v${host.index}`,
    'root',
    'tbf',
    'rate',
    rate,
    'burst',
    burst,
    'latency',
    '200ms',
  ])
}

/** sha256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex')
}

/** Path of an installed version's file. */
export function installedFile(n: LanNode, model: string, version: string): string {
  return join(n.dataDir, 'models', model, version, 'model.gguf')
}

/** The node's API base URL. */
export function apiUrl(n: LanNode): string {
  return n.info.api.includes('://') ? n.info.api : `http://${n.info.api}`
}
