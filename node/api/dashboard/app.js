/**
 * The dashboard's main loop: every few seconds it reads this node's JSON API and redraws the
 * page; operator buttons (only when the node holds the operator key) send POST /rollout/commands
 * and show the result or the error. A 401 from the API shows the refusal and no data. The persona
 * views and the timeline (app-views.js) are fed every refresh's data; with devices on more than
 * one site, a site selector (site-filter.js) narrows the device rows and the per-device plots.
 */
import { api, errorText, getToken, setToken } from './api.js'
import { clearViews, feed, reloadView, setupViews } from './app-views.js'
import { fill, h, short } from './dom.js'
import { isOnline, renderDevices, renderDownloads, renderProblems, renderReleases, renderSelf } from './render.js'
import { ALL_SITES, chosenSite, filterBySite, renderSiteSelect, sitesOf } from './site-filter.js'

const REFRESH_MS = 3000

/** @type {{ operator: boolean, busy: boolean, timer: number | undefined, pendingAbort: { model: string, version: string } | null, sites: string }} */
const state = { operator: false, busy: false, timer: undefined, pendingAbort: null, sites: '' }

/**
 * Draws the site selector when the sites seen or the choice changed (not on every refresh: an
 * open drop-down would close).
 * @param {string[]} sites
 * @param {string} site
 */
function updateSiteSelect(sites, site) {
  const sig = `${site}|${sites.join('|')}`
  if (sig === state.sites) return
  state.sites = sig
  fill(
    'site-filter',
    renderSiteSelect(sites, site, () => {
      reloadView()
      void refresh()
    }),
  )
}

/** @param {string} id */
function byId(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id))
}

/**
 * Shows the outcome of an operator command.
 * @param {'ok' | 'error' | 'pending'} kind
 * @param {string} text
 */
function notice(kind, text) {
  const el = byId('notice')
  el.hidden = false
  el.className = kind
  el.dataset.kind = kind
  el.replaceChildren(text)
}

/**
 * Shows (or hides, with null) the banner saying why no data is shown.
 * @param {string | null} text
 * @param {string} [kind]
 */
function banner(text, kind = 'error') {
  const el = byId('banner')
  el.hidden = text === null
  el.dataset.kind = kind
  el.replaceChildren(text ?? '')
}

/** Empties every data section (after a refusal: nothing from an earlier token stays on screen). */
function clearData() {
  shells.clear()
  clearViews()
  for (const id of ['releases', 'devices', 'downloads', 'self', 'mode-line', 'site-filter']) fill(id)
  state.sites = ''
  byId('node-line').replaceChildren('no data')
}

/**
 * The release cards in place, by key: each card's element and its buttons stay in the DOM across
 * refreshes (only the figures are redrawn; the buttons when the state changes).
 * @type {Map<string, { article: HTMLElement, body: HTMLElement, actions: HTMLElement, sig: string }>}
 */
const shells = new Map()

/** @param {import('./render.js').ReleaseView[]} views */
function updateReleases(views) {
  const container = byId('releases')
  if (views.length === 0) {
    shells.clear()
    fill('releases', h('p', { class: 'muted' }, 'No release known to this node yet.'))
    return
  }
  for (const el of [...container.children]) if (!(el instanceof HTMLElement && el.dataset.release)) el.remove()
  const keep = new Set(views.map((v) => v.key))
  for (const [key, shell] of shells) {
    if (!keep.has(key)) {
      shell.article.remove()
      shells.delete(key)
    }
  }
  views.forEach((v, i) => {
    let shell = shells.get(v.key)
    if (shell === undefined) {
      const body = h('div')
      const actions = h('div')
      shell = {
        article: h('article', { class: 'card release', 'data-release': v.key }, body, actions),
        body,
        actions,
        sig: '',
      }
      shells.set(v.key, shell)
    }
    shell.article.dataset.state = v.state
    shell.body.replaceWith(v.body)
    shell.body = v.body
    if (shell.sig !== v.sig) {
      const actions = v.controls() ?? h('div')
      shell.actions.replaceWith(actions)
      shell.actions = actions
      shell.sig = v.sig
    }
    if (container.children[i] !== shell.article) container.insertBefore(shell.article, container.children[i] ?? null)
  })
}

async function refresh() {
  const [fleet, status, rollout, releases] = await Promise.all([
    api('/dashboard/fleet'),
    api('/status'),
    api('/rollout'),
    api('/releases'),
  ])
  const refused = [fleet, status, rollout].find((r) => r.status === 401 || r.status === 403)
  if (refused) {
    clearData()
    banner(
      `The node's API refused the request (${errorText(refused)}). ` +
        (getToken() === '' ? 'Enter its API token above.' : 'The token given is wrong: enter the right one.'),
      'refused',
    )
    byId('main').hidden = true
    return
  }
  const failed = [fleet, status].find((r) => !r.ok)
  if (failed) {
    banner(`Cannot read this node's state: ${errorText(failed)}. Retrying every ${REFRESH_MS / 1000} s.`)
    return
  }
  banner(null)
  byId('main').hidden = false
  const node = fleet.data.node
  const now = fleet.data.now
  state.operator = node.operator === true
  byId('node-line').replaceChildren(
    `${node.role} ${short(node.id)} · fleet ${node.fleet} · `,
    h('span', { class: state.operator ? 'pill good' : 'pill' }, state.operator ? 'operator' : 'read-only'),
  )
  fill(
    'mode-line',
    state.operator
      ? 'This node holds the operator key: the buttons sign and send operator commands.'
      : 'Read-only: this node holds no operator key. Send commands from the seed, or with `llmesh rollout … --fleet <dir>`.',
  )
  const devices = /** @type {import('./render.js').Device[]} */ (fleet.data.devices)
  const sites = sitesOf(devices)
  const site = sites.length > 1 ? chosenSite() : ALL_SITES
  updateSiteSelect(sites, site)
  // the device rows and the per-device plots show the chosen site; release cards name everyone
  const shown = filterBySite(devices, site)
  fill('problems', rollout.ok ? renderProblems(rollout.data, status.data.loops) : null)
  if (rollout.ok) {
    updateReleases(
      renderReleases({
        rollouts: rollout.data.releases ?? [],
        published: releases.ok ? releases.data.releases : null,
        devices: new Map(devices.map((d) => [d.id, d])),
        operator: state.operator,
        onCommand,
        now,
      }),
    )
  } else {
    shells.clear()
    fill('releases', h('p', { class: 'muted' }, `No rollout state: ${errorText(rollout)}`))
  }
  fill(
    'devices',
    renderDevices({
      devices: shown,
      self: node.id,
      selfModels: status.data.models ?? {},
      now,
      interval: node.report_interval_ms,
    }),
  )
  fill('downloads', renderDownloads(status.data.models ?? {}))
  feed({
    rollouts: rollout.ok ? (rollout.data.releases ?? []) : [],
    published: releases.ok ? releases.data.releases : null,
    devices: shown,
    everyone: devices,
    now,
    online: (d) => d.id === node.id || isOnline(d, now, node.report_interval_ms),
  })
  fill('self', renderSelf(node, status.data))
  byId('refresh-line').replaceChildren(
    `Updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`,
  )
}

/**
 * Sends an operator command; abort first asks for confirmation and a reason.
 * @param {string} action
 * @param {string} model
 * @param {string} version
 */
function onCommand(action, model, version) {
  if (action === 'abort') {
    state.pendingAbort = { model, version }
    byId('abort-release').replaceChildren(`${model}@${version}`)
    const reason = /** @type {HTMLTextAreaElement} */ (byId('abort-reason'))
    reason.value = ''
    byId('abort-error').hidden = true
    const dialog = /** @type {HTMLDialogElement} */ (byId('abort-dialog'))
    dialog.showModal()
    reason.focus()
    return
  }
  void send(action, model, version, {})
}

/** @returns {NodeListOf<HTMLButtonElement>} the command buttons */
const buttons = () => document.querySelectorAll('button[data-action]')

/**
 * @param {string} action
 * @param {string} model
 * @param {string} version
 * @param {Record<string, string>} extra
 */
async function send(action, model, version, extra) {
  if (state.busy) return
  state.busy = true
  for (const b of buttons()) b.disabled = true
  notice('pending', `Sending ${action} for ${model}@${version}…`)
  const r = await api('/rollout/commands', { method: 'POST', body: { action, model, version, ...extra } })
  state.busy = false
  for (const b of buttons()) b.disabled = false
  if (r.ok) notice('ok', `${action} ${model}@${version} sent: signed command ${r.data.command.id.slice(0, 8)}.`)
  else notice('error', `${action} ${model}@${version} failed: ${errorText(r)}`)
  await refresh()
}

function setupAbortDialog() {
  const dialog = /** @type {HTMLDialogElement} */ (byId('abort-dialog'))
  byId('abort-cancel').addEventListener('click', () => {
    state.pendingAbort = null
    dialog.close()
  })
  byId('abort-confirm').addEventListener('click', () => {
    const reason = /** @type {HTMLTextAreaElement} */ (byId('abort-reason')).value.trim()
    if (reason === '') {
      byId('abort-error').hidden = false
      return
    }
    const p = state.pendingAbort
    state.pendingAbort = null
    dialog.close()
    if (p !== null) void send('abort', p.model, p.version, { reason })
  })
}

function setupToken() {
  const input = /** @type {HTMLInputElement} */ (byId('token'))
  input.value = getToken()
  byId('token-form').addEventListener('submit', (e) => {
    e.preventDefault()
    setToken(input.value.trim())
    void refresh()
  })
  byId('token-forget').addEventListener('click', () => {
    input.value = ''
    setToken('')
    void refresh()
  })
}

function loop() {
  void refresh().finally(() => {
    state.timer = window.setTimeout(loop, REFRESH_MS)
  })
}

setupToken()
setupAbortDialog()
setupViews()
loop()
