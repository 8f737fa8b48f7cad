/**
 * A rollout test bed for LAN tests: a seed and a few devices as real `llmesh` processes in network
 * namespaces (mDNS inside them, every device also bootstrapping to the seed so that lost peers are
 * redialed), and the reads the rollout tests make: /status and /rollout through curl inside the
 * namespace (a TypeScript CLI process per poll would eat the 2 cores), publishing through the CLI.
 */

import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { NodeStatus } from '../../node/api/status.ts'
import type { Fleet } from '../../node/fleet/index.ts'
import type { ReleaseRolloutStatus } from '../../node/rollout/plan.ts'
import { type TinyGgufOptions, writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { scaled } from '../helpers/index.ts'
import { type LanNode, makeFleetDir, startLanNode } from './helpers.ts'
import { REPO_ROOT, TestBed, until } from './netns.ts'

const BIN = join(REPO_ROOT, 'cli', 'bin.ts')

/** /status with the rollout and inference parts the tests read. */
export type RolloutBedStatus = NodeStatus & {
  rollout?: { releases: ReleaseRolloutStatus[] }
  inference?: { state: string; version: string | null }
}

/** Options of a rollout bed. */
export interface RolloutBedInit {
  /** Tags of each device (device i runs on host i + 1; the seed on host 0). */
  tags: string[][]
  /** Health report interval of every node (default `1s`). */
  reportInterval?: string
  /** Extra hosts without a node (e.g. a load client), after the devices. */
  spareHosts?: number
  /** LLMESH_LOG_LEVEL of every node (default `info`). */
  logLevel?: string
}

/** The bed, its fleet and its nodes. */
export interface RolloutBed {
  bed: TestBed
  fleet: Fleet
  work: string
  seed: LanNode
  devices: LanNode[]
  /** [seed, ...devices] */
  nodes: LanNode[]
  /** Starts (or restarts, same data dir) device i, with `extra` arguments if given (e.g. `--no-forwarding`). */
  startDevice(i: number, extra?: string[]): Promise<LanNode>
}

/** Creates the bed, starts the seed and the devices one after the other, waits for every enrollment everywhere. */
export async function startRolloutBed(init: RolloutBedInit): Promise<RolloutBed> {
  const bed = await TestBed.create({ hosts: init.tags.length + 1 + (init.spareHosts ?? 0) })
  const work = bed.logDir
  const fleet = await makeFleetDir(work)
  const interval = init.reportInterval ?? '1s'
  const seed = await startLanNode(bed, bed.hosts[0], {
    role: 'seed',
    fleetDir: fleet.dir,
    dataDir: join(work, 'data-seed'),
    name: 'seed',
    extra: ['--tags', 'seed', '--report-interval', interval],
    logLevel: init.logLevel,
  })
  const seedAddr = `/ip4/${bed.hosts[0].ip}/tcp/4001/p2p/${seed.info.peerId}`
  const runs = new Map<number, number>()
  const devices: LanNode[] = []
  const startDevice = async (i: number, more: string[] = []): Promise<LanNode> => {
    const run = (runs.get(i) ?? 0) + 1
    runs.set(i, run)
    const tags = init.tags[i]
    const n = await startLanNode(bed, bed.hosts[i + 1], {
      role: 'node',
      fleetDir: fleet.dir,
      dataDir: join(work, `data-${i + 1}`),
      name: run === 1 ? `d${i + 1}` : `d${i + 1}-run${run}`,
      logLevel: init.logLevel,
      extra: [
        ...['--report-interval', interval, '--bootstrap', seedAddr],
        ...(tags.length > 0 ? ['--tags', tags.join(',')] : []),
        ...more,
      ],
    })
    devices[i] = n
    rb.nodes[i + 1] = n
    return n
  }
  const rb: RolloutBed = { bed, fleet, work, seed, devices, nodes: [seed], startDevice }
  // one after the other: TypeScript processes starting at once on 2 cores exceed the start timeout
  for (let i = 0; i < init.tags.length; i++) await startDevice(i)
  await until(
    async () =>
      (await Promise.all(rb.nodes.map((n) => getJson<RolloutBedStatus>(bed, n, '/status')))).every(
        (s) => s.devices.filter((d) => d.enrolled).length >= rb.nodes.length,
      ),
    90_000,
    'every node sees every enrollment',
  )
  return rb
}

/** GET a JSON route of a node's API from inside its namespace. */
export async function getJson<T>(bed: TestBed, n: LanNode, path: string): Promise<T> {
  return JSON.parse(await bed.get(n.host, `${n.info.api}${path}`)) as T
}

/** A node's /status. */
export const statusOf = (bed: TestBed, n: LanNode) => getJson<RolloutBedStatus>(bed, n, '/status')

/** A release's rollout as a node's GET /rollout shows it. */
export async function rolloutOf(bed: TestBed, n: LanNode, version: string, model = 'tiny') {
  const r = await getJson<{ releases: ReleaseRolloutStatus[] }>(bed, n, '/rollout')
  return r.releases.find((x) => x.model === model && x.version === version)
}

/** Whether a device's status shows it serving `version` (active and worker ready on it). */
export function serving(s: RolloutBedStatus, version: string): boolean {
  return s.models.tiny?.active === version && s.inference?.version === version && s.inference.state === 'ready'
}

/** Writes a tiny GGUF and a policy file, then `llmesh release publish` on the seed. */
export async function publishTiny(
  rb: RolloutBed,
  version: string,
  policy: string,
  gguf: TinyGgufOptions = {},
): Promise<void> {
  const file = join(rb.work, `tiny-${version}.gguf`)
  await writeTinyGguf(file, { layers: 2, embd: 64, ...gguf })
  const pol = join(rb.work, `policy-${version}.yaml`)
  await writeFile(pol, policy)
  await rb.bed.exec(
    rb.seed.host,
    process.execPath,
    [
      BIN,
      ...['release', 'publish', file, '--model', 'tiny', '--version', version, '--policy', pol, '--json'],
      ...['--api', rb.seed.info.api],
    ],
    120_000,
    // the seed may be slow to answer the CLI's first call (a flood, CPU hogs beside the suite): the
    // call's own deadline, scaled like the test's, not the CLI's interactive 15 s
    { LLMESH_API_TIMEOUT: `${scaled(60_000)}ms` },
  )
}

/** When a process logged `msg` for `version`, if it did. */
export function logTime(n: LanNode, msg: string, version: string): number | undefined {
  return n.proc.logs.find((l) => l.msg === msg && l.version === version)?.time
}
