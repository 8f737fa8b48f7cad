/**
 * Real signed messages for the message store's durability tests: health reports of one device
 * key, with the id the store names them by (no fleet verification: the store never verifies).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { VerifiedWire } from '../../node/mesh/types.ts'
import { type HealthReport, signDeviceMessage, wireMessageId } from '../../protocols/index.ts'

/** A message as `MessageStore.put` takes it. */
export interface WireMessage {
  verified: VerifiedWire
  bytes: Uint8Array
}

/** A device key that signs health reports. */
export async function reporter(): Promise<{ key: PrivateKey; device: string }> {
  const key = await generateKeyPair('Ed25519')
  return { key, device: peerIdFromPrivateKey(key).toString() }
}

/** Health report `seq` of this device, its window ending at `end` (default now). */
export async function report(
  r: { key: PrivateKey; device: string },
  seq: number,
  end = Date.now(),
): Promise<WireMessage> {
  const message: HealthReport = {
    type: 'HealthReport',
    v: 1,
    fleet: 'test-fleet',
    device: r.device,
    seq,
    window: { start: end - 60_000, end },
    meta: { device_type: 'test', tags: [], runtime_version: '3.21.1', uptime_s: 10 },
    active: [],
    hardware: { cpu_pct: 1, ram_pct: 2, ram_total_mb: 1024 },
    inference: [],
    events: [],
  }
  const bytes = await signDeviceMessage(message, r.key)
  const digest = wireMessageId(bytes)
  if (digest === undefined) throw new Error('fixture report has no id')
  return { verified: { digest, type: 'HealthReport', message, signer: r.device }, bytes }
}
