/**
 * Parts shared by the persona views (views.js, views-product.js): device names, small tables,
 * history notes and plot points.
 */
import { h, short } from './dom.js'

/**
 * @typedef {import('./history.js').History} History
 * @typedef {import('./render.js').Device} Device
 */

/**
 * A device as people name it: its name (when it has one) and the end of its peer id.
 * @param {string} id
 * @param {Device[]} devices
 */
export function deviceName(id, devices) {
  const d = devices.find((x) => x.id === id)
  return d?.name ? `${d.name} · ${short(id)}` : short(id)
}

/**
 * A small table.
 * @param {string} role
 * @param {string[]} head
 * @param {Array<{ key: string, cells: Array<string | number | HTMLElement> }>} rows
 */
export function table(role, head, rows) {
  if (rows.length === 0) return h('p', { class: 'muted', 'data-table': role }, 'Nothing to show yet.')
  return h(
    'table',
    { 'data-table': role },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        head.map((x) => h('th', {}, x)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((r) =>
        h(
          'tr',
          { 'data-row': r.key },
          r.cells.map((c) => h('td', {}, c)),
        ),
      ),
    ),
  )
}

/** @param {History} hi */
export function problems(hi) {
  const notes = [...hi.errors]
  if (hi.skipped.releases > 0) notes.push(`${hi.skipped.releases} older releases not drawn`)
  if (hi.skipped.devices > 0) notes.push(`${hi.skipped.devices} devices not drawn`)
  return notes.length > 0 ? h('p', { class: 'muted', 'data-role': 'history-notes' }, notes.join(' · ')) : null
}

/**
 * [t, value] pairs of points.
 * @template P
 * @param {P[]} points
 * @param {(p: P) => number | null} f
 * @param {(p: P) => number} t
 * @returns {Array<[number, number | null]>}
 */
export const pairs = (points, f, t) => points.map((p) => [t(p), f(p)])
