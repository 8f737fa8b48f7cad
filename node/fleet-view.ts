/**
 * The fleet device view (protocols/fleet/device-view.ts) over this node's message store and mesh:
 * what `/status`, the dashboard and the seed's `GET /devices` list.
 */
import { type DeviceHello, type FleetDevice, fleetDevices } from '../protocols/fleet/device-view.ts'
import type { MeshNode } from './mesh/mesh-node.ts'
import type { MessageStore } from './mesh/message-store.ts'

/** The store's part the view reads. */
export type FleetViewSource = Pick<MessageStore, 'list'>

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

/** Every device this node knows, sorted by id. */
export function storeFleetView(store: FleetViewSource, opts: StoreFleetViewOptions): FleetDevice[] {
  return fleetDevices({
    enrollments: store.list('DeviceEnrollment').map((m) => ({ message: m.message, digest: m.digest })),
    revocations: store.list('Revocation').map((m) => m.message),
    reports: store.list('HealthReport').map((m) => m.message),
    hellos: meshHellos(opts.mesh),
    pending: opts.pending,
    self: opts.self,
    now: opts.now,
  })
}
