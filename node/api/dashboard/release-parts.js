/**
 * The parts of a release card (render-releases.js): the gate's figures against their thresholds,
 * the cohort's failed devices against the failure budget, and a device's short label. Pure DOM
 * building with `h` (text nodes only).
 */
import { duration, h, num, short } from './dom.js'

/**
 * @typedef {import('./render.js').Device} Device
 * @typedef {import('./render.js').Figure} Figure
 * @typedef {import('./render.js').Rollout} Rollout
 */

/**
 * A figure that is not met fails the stage only when the gate's outcome is `fail`; otherwise
 * (inconclusive: window not elapsed, too few reports or requests) the stage holds and waits.
 * @param {Figure[]} figures
 * @param {string} outcome
 */
export function gateTable(figures, outcome) {
  // windows in human durations, latencies in ms
  const fig = (/** @type {string} */ gate, /** @type {number | null | undefined} */ v) =>
    v === null || v === undefined
      ? '–'
      : gate === 'window_ms'
        ? duration(v)
        : gate.includes('_ms')
          ? `${num(v)} ms`
          : num(v)
  return h(
    'table',
    { class: 'gates' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'gate'),
        h('th', {}, 'value'),
        h('th', {}, 'threshold'),
        h('th', {}, 'baseline'),
        h('th', {}, ''),
      ),
    ),
    h(
      'tbody',
      {},
      figures.map((g) =>
        h(
          'tr',
          { 'data-gate': g.gate },
          h('td', {}, g.gate),
          h('td', { class: 'n' }, fig(g.gate, g.value)),
          h('td', { class: 'n' }, fig(g.gate, g.threshold)),
          h('td', { class: 'n' }, fig(g.gate, g.baseline)),
          g.pass
            ? h('td', { class: 'good' }, 'pass')
            : outcome === 'fail'
              ? h('td', { class: 'bad' }, 'FAIL')
              : h('td', { class: 'warn', title: 'not met yet: the stage holds' }, 'holds'),
        ),
      ),
    ),
  )
}

/**
 * The cohort's failed devices with their reasons, against the stage's failure budget (each one
 * rolled back by itself; the stage aborts only past the budget). Nothing when none failed.
 * @param {Rollout & { failures?: { cohort: number, budget: number,
 *   failed: Array<{ device: string, reasons: string[] }> } | null }} r
 * @param {Map<string, Device>} devices
 */
export function failedDevices(r, devices) {
  const f = r.failures
  if (!f || f.failed.length === 0) return null
  const over = f.failed.length > f.budget
  return h(
    'div',
    { class: 'failed-devices', 'data-role': 'failed-devices' },
    h('h4', {}, `Failed devices: ${f.failed.length} of ${f.cohort} (budget ${f.budget}${over ? ', exceeded' : ''})`),
    h(
      'ul',
      {},
      f.failed.map((x) =>
        h('li', { 'data-device': x.device }, deviceLabel(x.device, devices.get(x.device)), ': ', x.reasons.join(', ')),
      ),
    ),
  )
}

/**
 * @param {string} id
 * @param {Device | undefined} d
 */
export function deviceLabel(id, d) {
  return h('span', { class: 'dev', title: id }, short(id), d && d.tags.length > 0 ? ` [${d.tags.join(', ')}]` : '')
}
