/**
 * The fleet device view (protocols/fleet/device-view.ts) over this node's message store and mesh:
 * what `/status`, the dashboard and the seed's `GET /devices` list.
 */
import {
  type DeviceHello,
  type FleetDevice,
  type FleetViewInput,
  fleetDevices,
} from '../protocols/fleet/device-view.ts'
import type { MeshNode } from './mesh/mesh-node.ts'
import type { MessageStore } from './mesh/message-store.ts'

/** The store's part the view reads. */
export type FleetViewSource = Pick<MessageStore, 'list' | 'enrollmentsInForce' | 'claims'>

/** Options of `storeFleetView`. */
export interface StoreFleetViewOptions {
  /** The mesh, for the devices' hellos (declared tags, role, capabilities) while it runs. */
  mesh?: Pick<MeshNode, 'state' | 'antiEntropy'>
  /** Always listed (this node). */
  self?: string
  /** Devices waiting for the operator's approval (the invites flow). */
  pending?: ReadonlySet<string>
  now: number
}

/** The hellos of a running mesh (none otherwise). */
export function meshHellos(
  mesh: Pick<MeshNode, 'state' | 'antiEntropy'> | undefined,
): ReadonlyMap<string, DeviceHello> {
  return mesh?.state === 'running' ? mesh.antiEntropy.hellos : new Map()
}

/**
 * Every device this node knows, sorted by id. Enrollments are the operator's plus those won by
 * invite claims (the invite's tags and name); a device that said hello or claimed an invite and
 * holds no enrollment in force is `pending` (it waits for an invite or `llmesh device approve`).
 */
export function storeFleetView(store: FleetViewSource, opts: StoreFleetViewOptions): FleetDevice[] {
  return fleetDevices(storeViewInput(store, opts))
}

/** What the fleet device view reads, from the store and the mesh (see storeFleetView). */
export function storeViewInput(store: FleetViewSource, opts: StoreFleetViewOptions): FleetViewInput {
  const stored = store.list('DeviceEnrollment').map((m) => ({ message: m.message, digest: m.digest }))
  const operator = new Set(stored.map((r) => r.message))
  const inForce = store.enrollmentsInForce(opts.now)
  const byInvite = inForce.filter((e) => !operator.has(e)).map((e) => ({ message: e, digest: `invite:${e.device}` }))
  const revocations = store.list('Revocation').map((m) => m.message)
  const hellos = meshHellos(opts.mesh)
  const enrolled = new Set(inForce.map((e) => e.device))
  const revoked = new Set(revocations.map((r) => r.device))
  const pending = new Set(opts.pending)
  for (const id of [...hellos.keys(), ...store.claims().map((c) => c.claim.device)]) {
    if (!enrolled.has(id) && !revoked.has(id) && id !== opts.self) pending.add(id)
  }
  return {
    enrollments: [...stored, ...byInvite],
    revocations,
    reports: store.list('HealthReport').map((m) => m.message),
    hellos,
    pending,
    self: opts.self,
    now: opts.now,
  }
}
