/**
 * Reads the fleet's history for the persona views (GET /history, /history/releases/…,
 * /history/devices/…, /history/fleet: node/api/history-routes.ts). Only what the open view draws
 * is read, for a bounded number of releases and devices (the newest releases by seq; the devices in
 * the fleet view first), so a large fleet costs a fixed number of requests per refresh.
 */
import { api, errorText } from './api.js'

/** Releases read at most (newest first by the rollout's seq). */
export const MAX_RELEASES = 12
/** Devices read at most. */
export const MAX_DEVICES = 24
/** The recent range the plots show (the history's fine rings hold 6 h). */
export const RECENT_MS = 6 * 3600_000
/** The range of the per-day plots (the coarse rings hold 7 days). */
export const DAYS_MS = 7 * 86_400_000

/**
 * @typedef {import('../../telemetry/fleet-history.ts').ReleasePoint} ReleasePoint
 * @typedef {import('../../telemetry/fleet-history.ts').DevicePoint} DevicePoint
 * @typedef {{ t: number, known: number, reporting: number, offline_ratio: number }} FleetPoint
 * @typedef {{ model: string, version: string, key: string, points: ReleasePoint[] }} ReleaseHistory
 * @typedef {{ id: string, points: DevicePoint[] }} DeviceHistory
 * @typedef {{ from: number, to: number, releases: ReleaseHistory[], daily: ReleaseHistory[],
 *   devices: DeviceHistory[], fleet: FleetPoint[], errors: string[], skipped: { releases: number, devices: number } }} History
 */

/**
 * The releases to read: those with history on this node, newest rollout first, then the rest.
 * @param {string[]} held `model@version` keys with history
 * @param {Array<{ model: string, version: string, seq: number }>} rollouts
 */
export function pickReleases(held, rollouts) {
  const bySeq = [...rollouts].sort((a, b) => b.seq - a.seq).map((r) => `${r.model}@${r.version}`)
  const has = new Set(held)
  const order = [...bySeq.filter((k) => has.has(k)), ...held.filter((k) => !bySeq.includes(k)).sort()]
  return order
}

/** @param {string} key */
function split(key) {
  const at = key.lastIndexOf('@')
  return { model: key.slice(0, at), version: key.slice(at + 1) }
}

/**
 * Reads what `view` draws.
 * @param {'ops' | 'dev' | 'product'} view
 * @param {{ rollouts: Array<{ model: string, version: string, seq: number }>, devices: string[], now: number,
 *   only?: boolean }} p `only`: these devices alone (a site is chosen), not also those only the history holds
 * @returns {Promise<History>}
 */
export async function loadHistory(view, p) {
  const to = p.now
  const from = to - RECENT_MS
  /** @type {History} */
  const out = {
    from,
    to,
    releases: [],
    daily: [],
    devices: [],
    fleet: [],
    errors: [],
    skipped: { releases: 0, devices: 0 },
  }
  const summary = await api('/history')
  if (!summary.ok) {
    out.errors.push(`history: ${errorText(summary)}`)
    return out
  }
  const keys = pickReleases(summary.data.releases ?? [], p.rollouts)
  out.skipped.releases = Math.max(0, keys.length - MAX_RELEASES)
  const picked = keys.slice(0, MAX_RELEASES)
  const held = new Set(summary.data.devices ?? [])
  const ids = [
    ...p.devices.filter((id) => held.has(id)),
    ...(p.only === true ? [] : [...held].filter((id) => !p.devices.includes(id))),
  ]
  out.skipped.devices = Math.max(0, ids.length - MAX_DEVICES)

  /** @param {string} key @param {number} since */
  const release = async (key, since) => {
    const { model, version } = split(key)
    const r = await api(
      `/history/releases/${encodeURIComponent(model)}/${encodeURIComponent(version)}?from=${since}&to=${to}`,
    )
    if (!r.ok) out.errors.push(`${key}: ${errorText(r)}`)
    return { model, version, key, points: r.ok ? r.data.points : [] }
  }
  const releases = (/** @type {number} */ since) => Promise.all(picked.map((k) => release(k, since)))
  const devices = () =>
    Promise.all(
      ids.slice(0, MAX_DEVICES).map(async (id) => {
        const r = await api(`/history/devices/${encodeURIComponent(id)}?from=${from}&to=${to}`)
        if (!r.ok) out.errors.push(`device ${id}: ${errorText(r)}`)
        return { id, points: r.ok ? r.data.points : [] }
      }),
    )
  const fleet = async () => {
    const r = await api(`/history/fleet?from=${to - DAYS_MS}&to=${to}`)
    if (!r.ok) out.errors.push(`fleet: ${errorText(r)}`)
    return r.ok ? r.data.points : []
  }
  const none = async () => []
  // ops: devices, the fleet's offline share and the releases' failures; dev: the releases;
  // product: the releases, recent and over 7 days
  const [rel, daily, devs, fl] = await Promise.all([
    releases(from),
    view === 'product' ? releases(to - DAYS_MS) : none(),
    view === 'ops' ? devices() : none(),
    view === 'ops' ? fleet() : none(),
  ])
  out.releases = rel
  out.daily = daily
  out.devices = devs
  out.fleet = fl
  return out
}
