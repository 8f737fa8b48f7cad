/**
 * The per-site filter: devices declare the tag `site:<name>` (`--site`), and the page lists the
 * sites it has seen in a selector that narrows the device rows and the per-device plots to one
 * site. Shown only when more than one site is known; the choice lasts for the tab
 * (sessionStorage) and falls back to every site when the chosen one is no longer seen.
 * Pure functions plus one `<select>` built with `h` (no inline handler: CSP-safe).
 */
import { h } from './dom.js'

/** @typedef {import('./render.js').Device} Device */

const KEY = 'llmesh.site'
/** The selector's value for every site. */
export const ALL_SITES = ''

/**
 * The sites the devices declare, sorted, each once.
 * @param {Device[]} devices
 * @returns {string[]}
 */
export function sitesOf(devices) {
  /** @type {Set<string>} */
  const seen = new Set()
  for (const d of devices) if (typeof d.site === 'string' && d.site !== '') seen.add(d.site)
  return [...seen].sort()
}

/**
 * The devices of one site, or all of them for ALL_SITES (or a site no device declares any more).
 * @param {Device[]} devices
 * @param {string} site
 * @returns {Device[]}
 */
export function filterBySite(devices, site) {
  if (site === ALL_SITES || !devices.some((d) => d.site === site)) return devices
  return devices.filter((d) => d.site === site)
}

/** The chosen site ('' for all). */
export function chosenSite() {
  try {
    return sessionStorage.getItem(KEY) ?? ALL_SITES
  } catch {
    return ALL_SITES
  }
}

/** @param {string} site */
function choose(site) {
  try {
    if (site === ALL_SITES) sessionStorage.removeItem(KEY)
    else sessionStorage.setItem(KEY, site)
  } catch {
    // no storage (a locked-down browser): the choice lasts until the next refresh
  }
}

/**
 * The selector, or null with fewer than two sites.
 * @param {string[]} sites
 * @param {string} chosen
 * @param {(site: string) => void} onChange called after the choice is stored
 * @returns {HTMLElement | null}
 */
export function renderSiteSelect(sites, chosen, onChange) {
  if (sites.length < 2) return null
  const current = sites.includes(chosen) ? chosen : ALL_SITES
  const select = h(
    'select',
    {
      id: 'site-select',
      'data-role': 'site-select',
      onchange: (/** @type {Event} */ e) => {
        const v = /** @type {HTMLSelectElement} */ (e.target).value
        choose(v)
        onChange(v)
      },
    },
    h('option', { value: ALL_SITES, selected: current === ALL_SITES }, `all ${sites.length} sites`),
    sites.map((s) => h('option', { value: s, selected: current === s }, s)),
  )
  return h('label', { class: 'site-filter' }, 'Site ', select)
}
