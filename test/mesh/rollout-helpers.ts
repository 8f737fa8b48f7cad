/**
 * A loopback fleet for rollout tests: a seed and N devices, real daemons with the real
 * composition (node/device-services.ts): installer, store, replicator, inference worker, health
 * reporter and rollout controller. mDNS off; each device dials the seed and every earlier device,
 * so the devices stay connected when the seed stops.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Daemon } from '../../node/daemon.ts'
import { type DeviceParts, type DeviceServicesInit, deviceServices } from '../../node/device-services.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { silentLogger } from '../../node/logger.ts'
import type { QualityProberInit } from '../../node/quality/prober.ts'
import type { ReleaseRolloutStatus } from '../../node/rollout/plan.ts'
import { encodeProbeHeader } from '../../protocols/probe-file.ts'
import type { ProbeSet } from '../../protocols/schemas/index.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { type TinyGgufOptions, writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { cli, scaled } from '../helpers/index.ts'
import { makeFleet, type TestFleet, tempDir, waitFor } from './fixtures.ts'

/** One device of the test fleet. */
export interface FleetDevice {
  name: string
  daemon: Daemon
  parts: DeviceParts
  /** Every version the inference worker loaded, in order, with the time it was serving. */
  loaded: Array<{ version: string; at: number }>
  /** Every version the installer was asked to make active (activate or rollback target). */
  activated: Array<{ version: string; at: number }>
  id: string
}

/** The test fleet. */
export interface RolloutFleet {
  fleet: TestFleet
  seed: Daemon
  seedParts: DeviceParts
  devices: FleetDevice[]
  dir: string
  stop(): Promise<void>
}

const REPORT_MS = 400

/** One stage, no gate: every device runs the release at once (a fleet's first version). */
export const ONE_STAGE = `
stages:
  - { name: full, percent: 100, window: 1s }
gates:
  min_reports: 0
`

/** Starts a seed and `tags.length` devices (device i gets `tags[i]`). */
export async function startRolloutFleet(
  tags: string[][],
  fleet: TestFleet = makeFleet(),
  opts: {
    reportIntervalMs?: number
    quality?: QualityProberInit
    /** More options of device i's composition (e.g. `serving: { enabled: false }`). */
    device?: (i: number) => Partial<DeviceServicesInit>
  } = {},
): Promise<RolloutFleet> {
  const tmp = await tempDir('llmesh-rollout-')
  const base = (name: string) => ({
    fleet: { id: fleet.id, psk: fleet.psk, trust: fleet.trust },
    dataDir: join(tmp.dir, name),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    api: '127.0.0.1:0',
    mdns: false,
    reportIntervalMs: opts.reportIntervalMs ?? REPORT_MS,
    antiEntropy: { intervalMs: 5000 },
    logger: silentLogger(),
    // a stop that outlasts this is a hang (stop() below fails the test), not a slow machine
    serviceStopTimeoutMs: scaled(10_000),
  })
  const rollout = { startupCatchUpMs: 3000, decideIntervalMs: 250 }
  const seed = createSeedDaemon({ ...base('seed'), tags: ['seed'], signer: fleet.signer, rollout })
  await seed.start()
  const devices: FleetDevice[] = []
  for (const [i, t] of tags.entries()) {
    const dc = deviceServices({ supervisor: { threads: 1 }, rollout, quality: opts.quality, ...opts.device?.(i) })
    const daemon = new Daemon({
      ...base(`d${i}`),
      tags: t,
      bootstrap: [seed.context.mesh.multiaddrs()[0], ...devices.map((d) => d.daemon.context.mesh.multiaddrs()[0])],
      services: dc.services,
      routes: dc.routes,
    })
    await daemon.start()
    const dev: FleetDevice = {
      name: `d${i}`,
      daemon,
      parts: dc.parts,
      loaded: [],
      activated: [],
      id: daemon.context.identity.peerId,
    }
    const inst = dc.parts.distribution!.installer
    const activate = inst.activate.bind(inst)
    inst.activate = async (model, version) => {
      dev.activated.push({ version, at: Date.now() })
      return activate(model, version)
    }
    dc.parts.supervisor?.on('model-loaded', (e) => dev.loaded.push({ version: `${e.model.version}`, at: e.at }))
    devices.push(dev)
  }
  // every device enrolled, as every node sees it
  await waitFor(
    () => [seed, ...devices.map((d) => d.daemon)].every((n) => devices.every((d) => n.context.store.isEnrolled(d.id))),
    30_000,
    'enrollments',
  )
  return {
    fleet,
    seed,
    seedParts: seed.parts,
    devices,
    dir: tmp.dir,
    async stop() {
      for (const d of devices.reverse()) await d.daemon.stop().catch(() => {})
      await seed.stop().catch(() => {})
      await tmp.cleanup()
      // a service that did not stop in time is a bug, not something to wait 15 minutes for
      const stuck = [seed, ...devices.map((d) => d.daemon)].flatMap((d, i) => d.stuck.map((s) => `${i}:${s}`))
      if (stuck.length > 0) throw new Error(`services did not stop in time: ${stuck.join(', ')}`)
    },
  }
}

/** `llmesh fleet init <fleetDir>` (the CLI's own files), then a rollout fleet on that directory's keys. */
export async function startRolloutFleetFromDir(
  fleetDir: string,
  fleetId: string,
  tags: string[][],
): Promise<RolloutFleet> {
  // a lab fleet: the devices below are enrolled by the seed's auto-enroller, not by invites
  const init = await cli(['fleet', 'init', fleetDir, '--fleet-id', fleetId, '--auto-enroll'])
  if (init.code !== 0) throw new Error(`fleet init: ${init.stderr}`)
  const fl = await loadFleet(fleetDir)
  if (fl.operatorSigner === undefined) throw new Error('fleet init wrote no operator key')
  return startRolloutFleet(tags, { id: fl.root.fleet, psk: fl.swarmKey, signer: fl.operatorSigner, trust: fl.root })
}

/** Publishes a tiny GGUF through the seed's API with a policy YAML. */
export async function publish(
  f: RolloutFleet,
  version: string,
  policy: string,
  gguf: TinyGgufOptions = {},
  probes?: ProbeSet,
): Promise<{ created_at: number }> {
  const file = join(f.dir, `tiny-${version}.gguf`)
  await writeTinyGguf(file, { layers: 2, embd: 64, ...gguf })
  const res = await fetch(`${f.seed.apiUrl}/releases?model=tiny&version=${version}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      'x-llmesh-policy': Buffer.from(policy).toString('base64'),
      ...(probes ? { 'x-llmesh-probes': encodeProbeHeader(probes) } : {}),
    },
    body: await readFile(file),
  })
  const out = (await res.json()) as { manifest: { created_at: number } }
  if (res.status !== 201) throw new Error(`publish ${version}: ${res.status} ${JSON.stringify(out)}`)
  return out.manifest
}

/** The version a device's installer has active. */
export async function activeOf(d: FleetDevice): Promise<string | null> {
  return (await d.parts.distribution!.installer.status()).tiny?.active ?? null
}

/** POSTs an operator command to a node's API. */
export async function command(api: string, action: string, version: string, extra: Record<string, string> = {}) {
  const res = await fetch(`${api}/rollout/commands`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ action, model: 'tiny', version, ...extra }),
  })
  const out = (await res.json()) as { command: { id: string; issued_at: number } }
  if (res.status !== 201) throw new Error(`${action}: ${res.status} ${JSON.stringify(out)}`)
  return out.command
}

/** What a device's worker serves. */
export function servedOf(d: FleetDevice): string | undefined {
  const s = d.parts.supervisor
  return s?.state === 'ready' ? s.model?.version : undefined
}

/** A release's rollout status as one node sees it. */
export function rolloutOf(parts: DeviceParts, version: string): ReleaseRolloutStatus | undefined {
  return parts.controller?.statusJson().releases.find((r) => r.model === 'tiny' && r.version === version)
}

/** Waits until every device serves `version` (installer active and worker loaded). */
export async function waitAllServing(f: RolloutFleet, version: string, timeoutMs = 40_000): Promise<void> {
  await waitFor(
    async () => {
      for (const d of f.devices) if ((await activeOf(d)) !== version || servedOf(d) !== version) return false
      return true
    },
    timeoutMs,
    `all devices serving ${version}`,
  )
}

export { waitFor }

/**
 * Waits until every controller in `parts` has decided `count` more times than now (its tick
 * counter: once a second and on new messages): "after more ticks" as a condition the nodes reach,
 * for checks that something did NOT happen. A fixed sleep may hold no decision at all on a loaded
 * machine.
 */
export async function decisionsLater(parts: readonly DeviceParts[], count = 3): Promise<void> {
  const ticks = (p: DeviceParts) => p.controller?.counters.ticks ?? 0
  const from = parts.map(ticks)
  await waitFor(() => parts.every((p, i) => ticks(p) >= from[i] + count), count * 10_000, `${count} more decisions`)
}
