/**
 * The dashboard's plots: inline SVG drawn here (no library, no network, nothing but elements and
 * text nodes, so the page's strict CSP holds). A line plot has one line per series over time, a
 * point per value (each carrying `data-t`/`data-v`: what tests and people read back), dashed
 * threshold lines (a gate's limit) and a legend; a bar plot has one bar per (group, series).
 * Every label is a text node: a model or device name from the network cannot become markup.
 */
import { h, num } from './dom.js'

const SVG = 'http://www.w3.org/2000/svg'
const W = 640
const H = 200
const PAD = { l: 52, r: 12, t: 12, b: 26 }
/** Lines drawn at most (the rest are listed as left out): a plot stays readable and bounded. */
export const MAX_SERIES = 12
/** Points per series at most (the history's fine ring holds 360; coarse 672). */
export const MAX_POINTS = 800
/** The shortest x range drawn (ms): points of the last minutes stay apart. */
const MIN_SPAN_MS = 10 * 60_000
const COLORS = ['#0b57d0', '#b3261e', '#137333', '#8a5300', '#6d28d9', '#0e7490', '#be185d', '#4d7c0f']

/**
 * @typedef {{ name: string, points: Array<[number, number | null]> }} Series a named line: [t ms, value] pairs
 * @typedef {{ label: string, value: number }} Threshold a horizontal limit (a gate's threshold)
 */

/**
 * An SVG element.
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @param {string} [text]
 */
function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  if (text !== undefined) el.textContent = text
  return el
}

/**
 * A time label: HH:MM, with the day when the range spans more than one.
 * @param {number} t
 * @param {boolean} days
 */
function timeLabel(t, days) {
  const d = new Date(t)
  const hm = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
  return days ? `${d.getMonth() + 1}/${d.getDate()} ${hm}` : hm
}

/**
 * An axis number: 12k, 3.4M beyond four digits.
 * @param {number} v
 */
function compact(v) {
  if (Math.abs(v) >= 1e6) return `${num(v / 1e6)}M`
  if (Math.abs(v) >= 1e4) return `${num(v / 1e3)}k`
  return num(v)
}

/** @param {number} i */
const color = (i) => COLORS[i % COLORS.length]

/**
 * The figure around a plot: a title, the SVG, a legend, and a note (left-out series, no data).
 * @param {string} id
 * @param {string} title
 * @param {SVGElement | null} svg
 * @param {Array<[string, number]>} names each series' name and color index
 * @param {string} [note]
 */
function figure(id, title, svg, names, note) {
  return h(
    'figure',
    { class: 'plot', 'data-plot': id },
    h('figcaption', {}, title),
    svg ?? h('p', { class: 'muted', 'data-role': 'empty' }, 'No data in this range yet.'),
    names.length > 0
      ? h(
          'ul',
          { class: 'legend' },
          names.map(([n, i]) => h('li', {}, h('span', { class: `swatch c${i % COLORS.length}` }), n)),
        )
      : null,
    note ? h('p', { class: 'muted' }, note) : null,
  )
}

/**
 * A line plot over time.
 * @param {{ id: string, title: string, series: Series[], thresholds?: Threshold[], unit?: string,
 *   from: number, to: number, yMax?: number }} p
 * @returns {HTMLElement}
 */
export function linePlot(p) {
  const shown = p.series
    .filter((x) => x.points.some(([t, v]) => v !== null && t >= p.from && t <= p.to))
    .slice(0, MAX_SERIES)
  const left = p.series.length - shown.length
  const note = left > 0 ? `${left} series without data or past ${MAX_SERIES} not drawn.` : undefined
  if (shown.length === 0) return figure(p.id, p.title, null, [], note)
  const values = shown.flatMap((x) => x.points.map(([, v]) => v)).filter((v) => v !== null)
  const dataMax = Math.max(...values, 0)
  // a threshold far above the data would squash it flat: such a limit is drawn at the top edge
  const inScale = (/** @type {Threshold} */ th) => dataMax === 0 || th.value <= 3 * dataMax
  const limits = (p.thresholds ?? []).filter(inScale).map((x) => x.value)
  const top = p.yMax ?? (Math.max(dataMax, ...limits) * 1.1 || 1)
  // the x range starts at the first point (at most MIN_SPAN_MS before `to`): a young fleet's
  // minutes are not lost in 6 hours of nothing
  const times = shown.flatMap((x) => x.points.map(([t]) => t)).filter((t) => t >= p.from && t <= p.to)
  const x0 = Math.max(p.from, Math.min(...times, p.to - MIN_SPAN_MS))
  const span = Math.max(1, p.to - x0)
  const X = (/** @type {number} */ t) => PAD.l + ((t - x0) / span) * (W - PAD.l - PAD.r)
  const Y = (/** @type {number} */ v) => H - PAD.b - (Math.min(v, top) / top) * (H - PAD.t - PAD.b)
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart' })
  svg.append(s('title', {}, p.title))
  // axes: y at 0, half and top; x at both ends and the middle
  for (const f of [0, 0.5, 1]) {
    const v = top * f
    svg.append(s('line', { x1: PAD.l, x2: W - PAD.r, y1: Y(v), y2: Y(v), class: 'grid' }))
    svg.append(
      s('text', { x: PAD.l - 4, y: Y(v) + 4, 'text-anchor': 'end', class: 'axis' }, `${num(v)}${p.unit ?? ''}`),
    )
  }
  const days = span > 86_400_000
  for (const f of [0, 0.5, 1]) {
    const t = x0 + span * f
    const anchor = f === 0 ? 'start' : f === 1 ? 'end' : 'middle'
    svg.append(s('text', { x: X(t), y: H - 6, 'text-anchor': anchor, class: 'axis' }, timeLabel(t, days)))
  }
  for (const th of p.thresholds ?? []) {
    const above = !inScale(th)
    const g = s('g', {
      class: 'threshold',
      'data-threshold': th.label,
      'data-v': th.value,
      'data-above': String(above),
    })
    g.append(s('line', { x1: PAD.l, x2: W - PAD.r, y1: Y(th.value), y2: Y(th.value) }))
    const label = `${above ? '↑ above: ' : ''}${th.label} ${num(th.value)}${p.unit ?? ''}`
    g.append(s('text', { x: W - PAD.r - 2, y: Y(th.value) + (above ? 12 : -3), 'text-anchor': 'end' }, label))
    svg.append(g)
  }
  shown.forEach((x) => {
    const i = p.series.indexOf(x)
    const g = s('g', { class: `series c${i % COLORS.length}`, 'data-series': x.name })
    const pts = x.points.slice(-MAX_POINTS).filter(([t]) => t >= p.from && t <= p.to)
    let d = ''
    let pen = false
    for (const [t, v] of pts) {
      if (v === null) {
        pen = false
        continue
      }
      d += `${pen ? 'L' : 'M'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`
      pen = true
    }
    if (d !== '') g.append(s('path', { d, fill: 'none', stroke: color(i) }))
    for (const [t, v] of pts) {
      if (v === null) continue
      const c = s('circle', {
        cx: X(t).toFixed(1),
        cy: Y(v).toFixed(1),
        r: 2.5,
        fill: color(i),
        'data-t': t,
        'data-v': v,
      })
      c.append(s('title', {}, `${x.name}: ${num(v)}${p.unit ?? ''} at ${timeLabel(t, true)}`))
      g.append(c)
    }
    svg.append(g)
  })
  return figure(
    p.id,
    p.title,
    svg,
    shown.map((x) => [x.name, p.series.indexOf(x)]),
    note,
  )
}

/**
 * A bar plot: one group per label (e.g. a day), one bar per series in each.
 * @param {{ id: string, title: string, groups: string[], series: Array<{ name: string, values: number[] }>, unit?: string }} p
 * @returns {HTMLElement}
 */
export function barPlot(p) {
  const shown = p.series.slice(0, MAX_SERIES)
  const left = p.series.length - shown.length
  const note = left > 0 ? `${left} series past ${MAX_SERIES} not drawn.` : undefined
  const values = shown.flatMap((x) => x.values)
  if (p.groups.length === 0 || shown.length === 0 || values.every((v) => v === 0))
    return figure(p.id, p.title, null, [], note)
  const top = Math.max(...values) * 1.1 || 1
  const gw = (W - PAD.l - PAD.r) / p.groups.length
  const bw = Math.max(1, (gw * 0.8) / shown.length)
  const Y = (/** @type {number} */ v) => H - PAD.b - (v / top) * (H - PAD.t - PAD.b)
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart' })
  svg.append(s('title', {}, p.title))
  for (const f of [0, 0.5, 1]) {
    svg.append(s('line', { x1: PAD.l, x2: W - PAD.r, y1: Y(top * f), y2: Y(top * f), class: 'grid' }))
    svg.append(s('text', { x: PAD.l - 4, y: Y(top * f) + 4, 'text-anchor': 'end', class: 'axis' }, compact(top * f)))
  }
  p.groups.forEach((label, gi) => {
    const gx = PAD.l + gi * gw + gw * 0.1
    svg.append(s('text', { x: gx + gw * 0.4, y: H - 6, 'text-anchor': 'middle', class: 'axis' }, label))
    shown.forEach((x, i) => {
      const v = x.values[gi] ?? 0
      const r = s('rect', {
        x: (gx + i * bw).toFixed(1),
        y: Y(v).toFixed(1),
        width: bw.toFixed(1),
        height: (H - PAD.b - Y(v)).toFixed(1),
        fill: color(i),
        'data-series': x.name,
        'data-group': label,
        'data-v': v,
      })
      r.append(s('title', {}, `${x.name}, ${label}: ${num(v)}${p.unit ?? ''}`))
      svg.append(r)
    })
  })
  return figure(
    p.id,
    p.title,
    svg,
    shown.map((x, i) => [x.name, i]),
    note,
  )
}
