/**
 * Renders the dashboard's sections from the API's JSON (GET /dashboard/fleet, /status, /rollout,
 * /releases). Pure DOM building with `h` (text nodes only); the caller puts the nodes in place.
 * The page's entry point for rendering and the home of the shared JSDoc types; the sections live in
 * render-releases.js (release cards), render-devices.js (devices table) and render-node.js (this
 * node's panels and downloads).
 */

/**
 * @typedef {{ id: string, role: string, fleet: string, operator: boolean, report_interval_ms: number }} NodeInfo
 * @typedef {{ model: string, version: string, requests: number, errors: number, p95_ms: number | null }} Inference
 * @typedef {{ seq: number, window_ms: number, device_type: string, runtime_version: string, uptime_s: number,
 *   cpu_pct: number, ram_pct: number, temp_c: number | null, inference: Inference[],
 *   events: Record<string, number> }} Report
 * @typedef {{ id: string, tags: string[], declared_tags?: string[] | null, membership?: string, enrolled: boolean,
 *   revoked: boolean, active: string[],
 *   last_seen: number | null, report: Report | null }} Device
 * @typedef {{ gate: string, value: number | null, threshold: number | null, baseline?: number | null, pass: boolean }} Figure
 * @typedef {{ model: string, version: string, seq: number, state: string, phase: string, stage: number,
 *   stageName: string, stageStartedAt: number | null, previous: string | null,
 *   gate: { outcome: string, figures: Figure[], reasons: string[], reporters: number, required: number } | null,
 *   verdicts: Array<{ digest: string, device: string, stage: number, outcome: string, decided_at: number,
 *     evidence: number, adopted: boolean, check: string }>,
 *   commands: Array<{ id: string, action: string, issued_at: number, to_stage?: string }>,
 *   cohorts: Record<string, string[]>, abortedBy?: string, downgradeFrom?: string,
 *   prestaged?: { devices: number, of: number, missing: string[] } }} Rollout
 * @typedef {{ model: string, version: string, seq: number, size: number, chunks: number, created_at: number }} Published
 * @typedef {(action: string, model: string, version: string) => void} OnCommand
 * @typedef {import('./render-releases.js').ReleaseView} ReleaseView
 */

export { isOnline, renderDevices } from './render-devices.js'
export { renderDownloads, renderSelf } from './render-node.js'
export { renderProblems, renderReleases } from './render-releases.js'
