/**
 * The Product persona view: devices per version over time (the rollouts' progress), tokens per
 * model per day, devices serving each model per day, and the share of each model's online devices
 * on its newest release. Pure DOM building (`h`, plot.js): text nodes only.
 */
import { h, num } from './dom.js'
import { barPlot, linePlot } from './plot.js'
import { pairs, problems, table } from './view-parts.js'

/** @typedef {import('./views.js').ViewInput} ViewInput */

/**
 * Local day labels (MM-DD) of the last 7 days and the index of a time among them.
 * @param {number} to
 */
function days(to) {
  const end = new Date(to)
  end.setHours(0, 0, 0, 0)
  const starts = Array.from({ length: 7 }, (_, i) => end.getTime() - (6 - i) * 86_400_000)
  const labels = starts.map((t) => {
    const d = new Date(t)
    return `${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`
  })
  const index = (/** @type {number} */ t) => {
    for (let i = starts.length - 1; i >= 0; i--) if (t >= starts[i]) return i
    return -1
  }
  return { labels, index }
}

/** @param {ViewInput} v */
export function renderProduct(v) {
  const hi = v.history
  const { labels, index } = days(hi.to)
  const models = [...new Set(hi.daily.map((r) => r.model))].sort()
  const perModel = (/** @type {(points: import('./history.js').ReleasePoint[], day: number) => number} */ f) =>
    models.map((m) => ({
      name: m,
      values: labels.map((_, day) => hi.daily.filter((r) => r.model === m).reduce((n, r) => n + f(r.points, day), 0)),
    }))
  const inDay = (/** @type {import('./history.js').ReleasePoint[]} */ pts, /** @type {number} */ day) =>
    pts.filter((p) => index(p.t) === day)
  const online = v.devices.filter((d) => v.online(d))
  const adoption = [...new Set(v.rollouts.map((r) => r.model))].sort().map((m) => {
    const newest = v.rollouts.filter((r) => r.model === m && r.state !== 'aborted').sort((a, b) => b.seq - a.seq)[0]
    const on = newest ? online.filter((d) => d.active.includes(`${m}@${newest.version}`)).length : 0
    const serving = online.filter((d) => d.active.some((a) => a.startsWith(`${m}@`))).length
    return {
      key: m,
      cells: [
        m,
        newest ? newest.version : '–',
        `${on} of ${serving}`,
        serving > 0 ? `${num((on * 100) / serving)} %` : '–',
      ],
    }
  })
  return [
    h(
      'p',
      { 'data-role': 'product-summary' },
      `${online.length} devices active now, ${models.length} models served in the last 7 days`,
    ),
    problems(hi),
    h(
      'div',
      { class: 'plots' },
      linePlot({
        id: 'devices-per-version',
        title: 'Devices per version (the rollouts’ progress)',
        series: hi.releases.map((r) => ({
          name: r.key,
          points: pairs(
            r.points,
            (p) => p.devices,
            (p) => p.t,
          ),
        })),
        from: hi.from,
        to: hi.to,
      }),
      barPlot({
        id: 'tokens-per-day',
        title: 'Tokens (in + out) per model per day',
        groups: labels,
        series: perModel((pts, day) => inDay(pts, day).reduce((n, p) => n + p.tokens_in + p.tokens_out, 0)),
      }),
      barPlot({
        id: 'devices-per-day',
        title: 'Devices serving each model per day (peak of any 15 min)',
        groups: labels,
        series: perModel((pts, day) => Math.max(0, ...inDay(pts, day).map((p) => p.devices))),
      }),
    ),
    h('h3', {}, 'Adoption of each model’s newest release (devices online now)'),
    table('adoption', ['model', 'newest release', 'devices on it', 'share'], adoption),
  ]
}
