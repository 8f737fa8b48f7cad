/**
 * Test fixtures for mesh tests: an in-memory fleet (operator key, trust root, join secret),
 * signed messages of each kind, and loopback mesh nodes (mDNS off, direct dials).
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateKey } from '@libp2p/pnet'
import { silentLogger } from '../../node/logger.ts'
import { createFleetVerifier } from '../../node/mesh/fleet-verifier.ts'
import { MeshNode, type MeshNodeInit } from '../../node/mesh/mesh-node.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import {
  createOperatorSigner,
  type DeviceEnrollment,
  generateOperatorKey,
  type HealthReport,
  type OperatorCommand,
  type OperatorSigner,
  signDeviceMessage,
  signOperatorMessage,
  type TrustRoot,
} from '../../protocols/index.ts'
import { waitFor as waitForCondition } from '../helpers/index.ts'

/** An in-memory fleet. */
export interface TestFleet {
  id: string
  psk: Uint8Array
  signer: OperatorSigner
  trust: TrustRoot
}

/** A fresh swarm key (the join secret). */
export function newPsk(): Uint8Array {
  const psk = new Uint8Array(95)
  generateKey(psk)
  return psk
}

/** Creates a fleet with one ECDSA operator key and auto-enrolment on. */
export function makeFleet(id = 'test-fleet', now = Date.now()): TestFleet {
  const k = generateOperatorKey()
  const signer = createOperatorSigner(k.privateKeyPem)
  const trust: TrustRoot = {
    type: 'TrustRoot',
    v: 1,
    fleet: id,
    version: 1,
    keys: [k.key],
    threshold: 1,
    created_at: now - 1000,
    auto_enroll: true,
  }
  return { id, psk: newPsk(), signer, trust }
}

/** A signed DeviceEnrollment for `device`. */
export function enrollment(fleet: TestFleet, device: string, now = Date.now()): Promise<Uint8Array> {
  const msg: DeviceEnrollment = {
    type: 'DeviceEnrollment',
    v: 1,
    fleet: fleet.id,
    device,
    tags: ['lab'],
    capabilities: { arch: 'x64', ram_mb: 1024, device_type: 'test' },
    issued_at: now,
  }
  return signOperatorMessage(msg, fleet.signer)
}

let cmdCounter = 0
/** A signed OperatorCommand (unique id per call), by the fleet's operator key unless `signer` is given. */
export function command(fleet: TestFleet, now = Date.now(), signer = fleet.signer): Promise<Uint8Array> {
  const msg: OperatorCommand = {
    type: 'OperatorCommand',
    v: 1,
    fleet: fleet.id,
    action: 'pause',
    model: 'tiny',
    version: '1.0.0',
    id: (now * 1000 + cmdCounter++).toString(16).padStart(16, '0'),
    issued_at: now,
  }
  return signOperatorMessage(msg, signer)
}

/** A HealthReport signed by a device key. */
export function healthReport(fleet: TestFleet, key: PrivateKey, seq: number, now = Date.now()): Promise<Uint8Array> {
  const device = peerIdFromPrivateKey(key).toString()
  const msg: HealthReport = {
    type: 'HealthReport',
    v: 1,
    fleet: fleet.id,
    device,
    seq,
    window: { start: now - 60_000, end: now },
    meta: { device_type: 'test', tags: [], runtime_version: '3.21.1', uptime_s: 10 },
    active: [],
    hardware: { cpu_pct: 1, ram_pct: 2, ram_total_mb: 1024 },
    inference: [],
    events: [],
  }
  return signDeviceMessage(msg, key)
}

/** A loopback mesh node with its own store. */
export interface TestNode {
  node: MeshNode
  store: MessageStore
  key: PrivateKey
  id: string
  dataDir?: string
}

/** Creates (and starts) a loopback node: mDNS off, listening on 127.0.0.1. */
export async function startNode(
  fleet: TestFleet,
  opts: { key?: PrivateKey; dataDir?: string; init?: Partial<MeshNodeInit>; psk?: Uint8Array } = {},
): Promise<TestNode> {
  const key = opts.key ?? (await generateKeyPair('Ed25519'))
  const logger = silentLogger()
  const store = new MessageStore({ logger }, { dataDir: opts.dataDir })
  const verify = createFleetVerifier({ trust: fleet.trust, store })
  const node = new MeshNode(
    { store, verify, logger },
    {
      fleet: fleet.id,
      psk: opts.psk ?? fleet.psk,
      privateKey: key,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      mdns: false,
      ...opts.init,
    },
  )
  await node.start()
  return { node, store, key, id: peerIdFromPrivateKey(key).toString(), dataDir: opts.dataDir }
}

/** A temporary directory removed by the returned cleanup. */
export async function tempDir(prefix = 'llmesh-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

/** Polls `check` until it returns true or `timeoutMs` (scaled for a loaded machine, test/helpers) passes. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
  detail?: () => unknown,
): Promise<void> {
  await waitForCondition(check, { timeoutMs, what, intervalMs: 20, detail })
}

/**
 * Connects `from` to `to`, dialling again until the deadline (scaled): on a loaded machine one
 * dial can pass libp2p's own dial timeout (10 s; 6 s per address) while the handshake waits for CPU.
 */
export async function connect(
  from: Pick<TestNode, 'node'>,
  to: Pick<TestNode, 'node'>,
  timeoutMs = 30_000,
): Promise<void> {
  let last: unknown
  await waitFor(
    async () => {
      try {
        await from.node.dial(to.node.multiaddrs()[0])
        return true
      } catch (err) {
        last = err
        return false
      }
    },
    timeoutMs,
    'a connection',
    () => ({ lastError: String(last) }),
  )
}

/** Waits until every node has at least one gossip mesh peer on `topic`. */
export async function waitForMesh(nodes: TestNode[], topic: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    () => nodes.every((n) => n.node.libp2p.services.pubsub.getSubscribers(topic).length > 0),
    timeoutMs,
    'gossip subscriptions',
  )
}
