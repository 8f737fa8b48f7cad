/**
 * Tiny DOM helpers. Everything from the network goes into the page as text nodes or attribute
 * values (never as HTML), so a device name, tag or reason cannot inject markup or script.
 */

/**
 * @typedef {Node | string | number | null | undefined | false} Child
 * @typedef {Child | Array<Child | Array<Child | Array<Child | Child[]>>>} Children children, nested up to three deep (flattened)
 */

/**
 * Creates an element. `on<event>` attributes given a function become listeners.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...Children} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), /** @type {EventListener} */ (v))
    else if (k === 'class') el.className = String(v)
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat(Number.POSITIVE_INFINITY)) {
    if (c === null || c === undefined || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

/**
 * Replaces the children of the element with this id.
 * @param {string} id
 * @param {...Children} children
 */
export function fill(id, ...children) {
  const el = document.getElementById(id)
  if (el === null) return
  el.replaceChildren()
  for (const c of children.flat(Number.POSITIVE_INFINITY)) {
    if (c === null || c === undefined || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
}

/**
 * The last 8 characters of a peer id (what the CLI shows too).
 * @param {string} id
 */
export function short(id) {
  return id.length > 10 ? `…${id.slice(-8)}` : id
}

/**
 * "12 s ago" from two epoch ms.
 * @param {number | null | undefined} at
 * @param {number} now
 */
export function ago(at, now) {
  if (at === null || at === undefined) return 'never'
  const s = Math.max(0, Math.round((now - at) / 1000))
  if (s < 120) return `${s} s ago`
  if (s < 7200) return `${Math.round(s / 60)} min ago`
  if (s < 172800) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86400)} d ago`
}

/**
 * A number for a figure: integers as they are, others with 3 significant digits.
 * @param {number | null | undefined} n
 */
export function num(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–'
  if (Number.isInteger(n)) return String(n)
  return Number(n.toPrecision(3)).toString()
}

/**
 * Bytes as KiB/MiB/GiB.
 * @param {number} n
 */
export function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`
}

/**
 * A duration for people: "45 s", "30 min", "2 h 5 min", "3 d 4 h".
 * @param {number | null | undefined} ms
 */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–'
  const s = Math.round(ms / 1000)
  if (s < 1) return `${Math.round(ms)} ms`
  if (s < 120) return `${s} s`
  const m = Math.round(s / 60)
  if (m < 120) return `${m} min`
  const hr = Math.floor(m / 60)
  if (hr < 48) return m % 60 === 0 ? `${hr} h` : `${hr} h ${m % 60} min`
  const d = Math.floor(hr / 24)
  return hr % 24 === 0 ? `${d} d` : `${d} d ${hr % 24} h`
}
