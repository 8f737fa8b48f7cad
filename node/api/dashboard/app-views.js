/**
 * The page's views: Rollouts (the release cards, devices and the timeline, redrawn by app.js every
 * few seconds) and the persona views Ops, Dev and Product (views.js), chosen by the URL's hash
 * (#ops, #dev, #product) so a view can be linked. A persona view reads the history when it opens
 * and then every HISTORY_REFRESH_MS while it stays open (one load at a time); its panel carries
 * `data-loaded` (the load count) so a reader knows when it was drawn. The timeline's verdicts open
 * their evidence in a dialog.
 */
import { api, errorText } from './api.js'
import { fill, h } from './dom.js'
import { loadHistory } from './history.js'
import { renderEvidence, renderTimeline } from './render-timeline.js'
import { renderDev, renderOps } from './views.js'
import { renderProduct } from './views-product.js'

/** How often an open persona view reads the history again. */
export const HISTORY_REFRESH_MS = 30_000

const VIEWS = /** @type {const} */ (['rollouts', 'ops', 'dev', 'product'])
/** @typedef {(typeof VIEWS)[number]} View */

/**
 * What the last refresh read, for the views.
 * @typedef {{ rollouts: import('./render.js').Rollout[], published: import('./render.js').Published[] | null,
 *   devices: import('./render.js').Device[], everyone?: import('./render.js').Device[], now: number,
 *   online: (d: import('./render.js').Device) => boolean }} Snapshot
 * `devices` are those the views plot (the chosen site's); `everyone` names the devices in the timeline.
 */

/** @type {{ view: View, snapshot: Snapshot | null, loading: boolean, loadedAt: number, loads: number }} */
const state = { view: 'rollouts', snapshot: null, loading: false, loadedAt: 0, loads: 0 }

/** @returns {View} */
function fromHash() {
  const v = location.hash.replace(/^#/, '')
  return /** @type {readonly string[]} */ (VIEWS).includes(v) ? /** @type {View} */ (v) : 'rollouts'
}

function show() {
  state.view = fromHash()
  for (const el of document.querySelectorAll('[data-view-panel]')) {
    const panel = /** @type {HTMLElement} */ (el)
    panel.hidden = panel.dataset.viewPanel !== state.view
  }
  for (const el of document.querySelectorAll('#views a')) {
    const a = /** @type {HTMLElement} */ (el)
    a.setAttribute('aria-current', a.dataset.view === state.view ? 'page' : 'false')
  }
  state.loadedAt = 0
  void loadView()
}

/** Reads the history of the open persona view and draws it. */
async function loadView() {
  const view = state.view
  const snap = state.snapshot
  if (view === 'rollouts' || snap === null || state.loading) return
  state.loading = true
  try {
    const history = await loadHistory(view, {
      rollouts: snap.rollouts,
      devices: snap.devices.map((d) => d.id),
      now: snap.now,
      // a site is chosen: its devices alone, not every device the history holds
      only: snap.everyone !== undefined && snap.everyone.length !== snap.devices.length,
    })
    if (view !== state.view) return
    const input = { history, rollouts: snap.rollouts, devices: snap.devices, online: snap.online }
    fill(view, view === 'ops' ? renderOps(input) : view === 'dev' ? renderDev(input) : renderProduct(input))
    state.loads++
    const panel = document.getElementById(`view-${view}`)
    if (panel) panel.dataset.loaded = String(state.loads)
  } finally {
    // the view changed during the load: the next refresh loads the new one at once
    state.loadedAt = view === state.view ? Date.now() : 0
    state.loading = false
  }
}

/**
 * Takes the newest refresh: redraws the timeline, and the open persona view when its history is due.
 * @param {Snapshot} snap
 */
export function feed(snap) {
  state.snapshot = snap
  const names = new Map((snap.everyone ?? snap.devices).map((d) => [d.id, d.name]))
  fill(
    'timeline',
    renderTimeline({ rollouts: snap.rollouts, published: snap.published, now: snap.now, onVerdict, names }),
  )
  if (state.view !== 'rollouts' && Date.now() - state.loadedAt >= HISTORY_REFRESH_MS) void loadView()
}

/** Draws the open persona view again with the next refresh (e.g. another site was chosen). */
export function reloadView() {
  state.loadedAt = 0
}

/** Empties the views (after a refusal). */
export function clearViews() {
  state.snapshot = null
  for (const id of ['timeline', 'ops', 'dev', 'product']) fill(id)
}

/**
 * Opens a verdict's evidence.
 * @param {string} digest
 */
async function onVerdict(digest) {
  const dialog = /** @type {HTMLDialogElement} */ (document.getElementById('evidence-dialog'))
  fill('evidence-body', h('p', { class: 'muted' }, 'Reading the evidence…'))
  if (!dialog.open) dialog.showModal()
  const r = await api(`/dashboard/verdicts/${encodeURIComponent(digest)}`)
  const snap = state.snapshot
  const names = new Map((snap?.everyone ?? snap?.devices ?? []).map((d) => [d.id, d.name]))
  fill('evidence-body', r.ok ? renderEvidence(r.data, names) : h('p', { class: 'bad' }, errorText(r)))
  const body = document.getElementById('evidence-body')
  if (body) body.dataset.digest = digest
}

/** Wires the view links and the evidence dialog; shows the view the URL names. */
export function setupViews() {
  window.addEventListener('hashchange', show)
  const dialog = /** @type {HTMLDialogElement} */ (document.getElementById('evidence-dialog'))
  document.getElementById('evidence-close')?.addEventListener('click', () => dialog.close())
  show()
}
