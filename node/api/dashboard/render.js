/**
 * Renders the dashboard's sections from the API's JSON (GET /dashboard/fleet, /status, /rollout,
 * /releases). Pure DOM building with `h` (text nodes only); the caller puts the nodes in place.
 * The page's entry point for rendering and the home of the shared JSDoc types; the sections live in
 * render-releases.js (release cards, their parts in release-parts.js), render-problems.js (what
 * needs the operator), render-devices.js (devices table) and render-node.js (this
 * node's panels and downloads).
 */

/**
 * The types of the JSON the page reads, imported from the server's own (checked by
 * `npx tsc -p node/api/dashboard`: no hand copies).
 * @typedef {import('../dashboard-fleet.ts').DashboardNode} NodeInfo
 * @typedef {import('../dashboard-fleet.ts').DashboardInference} Inference
 * @typedef {NonNullable<Device['report']>} Report
 * @typedef {import('../dashboard-fleet.ts').DashboardDevice} Device
 * @typedef {import('../../../protocols/schemas/index.ts').GateFigure} Figure
 * @typedef {import('../../rollout/plan.ts').ReleaseRolloutStatus} Rollout
 * @typedef {import('../dashboard-fleet.ts').PublishedRelease} Published
 * @typedef {(action: string, model: string, version: string) => void} OnCommand
 * @typedef {import('./render-releases.js').ReleaseView} ReleaseView
 */

export { isOnline, renderDevices } from './render-devices.js'
export { renderDownloads, renderSelf } from './render-node.js'
export { renderProblems } from './render-problems.js'
export { renderReleases } from './render-releases.js'
