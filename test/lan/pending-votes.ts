/**
 * The "votes" a device that is not enrolled could send about a release's stage, signed with its
 * own identity key (read from its data directory): a health report full of failures, an abort
 * verdict and a promote verdict. LAN tests send them over gossip and expect every node to refuse
 * them (`ERR_NOT_ENROLLED`).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import {
  type HealthReport,
  signDeviceMessage,
  TOPIC_HEALTH,
  TOPIC_ROLLOUT,
  type Verdict,
} from '../../protocols/index.ts'
import type { LanNode } from './helpers.ts'

/** Failure counts that fail every gate. */
export const FAILING = { restarts: 9, ooms: 2, load_failures: 1, probe_failures: 1, rollbacks: 1 }

/** One signed vote and the base topic it travels on. */
export interface SignedVote {
  from: LanNode
  topic: string
  bytes: Uint8Array
}

/** A failing report, an abort and a promote verdict about stage 0 of `tiny@version`, signed by `n`'s key. */
export async function votesOf(n: LanNode, fleet: string, version: string, since: number): Promise<SignedVote[]> {
  const key = privateKeyFromProtobuf(await readFile(join(n.dataDir, 'identity.key')))
  const window = { start: since + 1, end: Date.now() }
  const report: HealthReport = {
    type: 'HealthReport',
    v: 1,
    fleet,
    device: n.info.peerId,
    seq: 1_000_000,
    window,
    meta: { device_type: 'test', tags: ['pilot'], runtime_version: '3.21.1', uptime_s: 100 },
    active: [{ model: 'tiny', version }],
    hardware: { cpu_pct: 1, ram_pct: 1, ram_total_mb: 1024 },
    inference: [],
    events: [{ model: 'tiny', version, counts: FAILING }],
  }
  const verdict = (outcome: 'abort' | 'promote'): Verdict => ({
    type: 'Verdict',
    v: 1,
    fleet,
    device: n.info.peerId,
    model: 'tiny',
    version,
    stage: 0,
    outcome,
    decided_at: Date.now(),
    window,
    evidence: [],
    figures: [],
  })
  return [
    { from: n, topic: TOPIC_HEALTH, bytes: await signDeviceMessage(report, key) },
    { from: n, topic: TOPIC_ROLLOUT, bytes: await signDeviceMessage(verdict('abort'), key) },
    { from: n, topic: TOPIC_ROLLOUT, bytes: await signDeviceMessage(verdict('promote'), key) },
  ]
}
