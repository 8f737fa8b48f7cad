/**
 * The fleet's release timeline, newest first: published (from GET /releases, the manifest's
 * created_at), the current stage's start, every verdict (a button: its evidence opens in a dialog,
 * read from GET /dashboard/verdicts/:digest) and every operator command. Times are human
 * ("12 min ago") with the exact time as a tooltip. Pure DOM building with `h` (text nodes only).
 */
import { ago, duration, h, num, short } from './dom.js'

/** Entries shown at most. */
export const TIMELINE_MAX = 200

/**
 * @typedef {import('./render.js').Rollout} Rollout
 * @typedef {import('./render.js').Published} Published
 * @typedef {{ t: number, kind: string, release: string, text: Array<string | HTMLElement>, digest?: string }} Entry
 * @typedef {import('../dashboard-evidence.ts').VerdictEvidence} VerdictEvidence
 */

/**
 * A device as people name it: its name (when known) and the end of its peer id.
 * @param {string} id
 * @param {Map<string, string | null> | undefined} names
 */
function who(id, names) {
  const name = names?.get(id)
  return name ? `${name} · ${short(id)}` : short(id)
}

/**
 * The timeline's entries, newest first.
 * @param {Rollout[]} rollouts
 * @param {Published[] | null} published
 * @param {Map<string, string | null>} [names] device names by peer id
 * @returns {Entry[]}
 */
export function timelineEntries(rollouts, published, names) {
  /** @type {Entry[]} */
  const out = []
  const keys = new Set(rollouts.map((r) => `${r.model}@${r.version}`))
  for (const p of published ?? []) {
    const release = `${p.model}@${p.version}`
    if (!keys.has(release)) continue
    out.push({ t: p.created_at, kind: 'published', release, text: [`published (seq ${p.seq}, ${p.chunks} chunks)`] })
  }
  for (const r of rollouts) {
    const release = `${r.model}@${r.version}`
    if (r.stageStartedAt !== null && r.state !== 'aborted')
      out.push({ t: r.stageStartedAt, kind: 'stage', release, text: [`stage ${r.stage} (${r.stageName}) started`] })
    for (const v of r.verdicts)
      out.push({
        t: v.decided_at,
        kind: `verdict-${v.outcome}`,
        release,
        digest: v.digest,
        text: [
          `verdict ${v.outcome} on stage ${v.stage} by ${who(v.device, names)}: ${v.evidence} signed reports, ${v.check}`,
          v.adopted ? ', adopted' : '',
        ].filter((x) => x !== ''),
      })
    for (const c of r.commands)
      out.push({
        t: c.issued_at,
        kind: `command-${c.action}`,
        release,
        text: [`operator ${c.action}${c.to_stage ? ` → ${c.to_stage}` : ''} (command ${c.id.slice(0, 8)})`],
      })
  }
  return out.sort((a, b) => b.t - a.t).slice(0, TIMELINE_MAX)
}

/**
 * The timeline list.
 * @param {{ rollouts: Rollout[], published: Published[] | null, now: number, onVerdict: (digest: string) => void,
 *   names?: Map<string, string | null> }} p
 */
export function renderTimeline(p) {
  const entries = timelineEntries(p.rollouts, p.published, p.names)
  if (entries.length === 0) return [h('p', { class: 'muted' }, 'Nothing has happened to a release yet.')]
  return [
    h(
      'ol',
      { class: 'timeline' },
      entries.map((e) =>
        h(
          'li',
          { 'data-event': e.kind, 'data-event-release': e.release, 'data-t': String(e.t) },
          h('time', { datetime: new Date(e.t).toISOString(), title: new Date(e.t).toLocaleString() }, ago(e.t, p.now)),
          ' ',
          h('strong', {}, e.release),
          ' ',
          e.digest
            ? h(
                'button',
                { type: 'button', class: 'link', 'data-verdict': e.digest, onclick: () => p.onVerdict(e.digest ?? '') },
                e.text,
              )
            : e.text,
        ),
      ),
    ),
  ]
}

/**
 * A verdict's evidence, for the dialog.
 * @param {VerdictEvidence} v
 * @param {Map<string, string | null>} [names] device names by peer id
 */
export function renderEvidence(v, names) {
  const held = v.evidence.filter((e) => e.held).length
  return [
    h(
      'p',
      {},
      `${v.model}@${v.version}: ${v.outcome} on stage ${v.stage} by ${who(v.device, names)}, over a window of `,
      duration(v.window.end - v.window.start),
      `. ${v.evidence.length + v.more} reports cited, ${held} of the ${v.evidence.length} listed held here.`,
    ),
    v.figures.length > 0
      ? h(
          'ul',
          { 'data-role': 'verdict-figures' },
          v.figures.map((f) =>
            h(
              'li',
              {},
              f.gate === 'window_ms'
                ? `window: ${duration(f.value)} (at least ${duration(f.threshold)}) ${f.pass ? 'pass' : 'not met'}`
                : `${f.gate}: ${num(f.value)} (threshold ${num(f.threshold)}) ${f.pass ? 'pass' : 'not met'}`,
            ),
          ),
        )
      : null,
    h(
      'table',
      { 'data-role': 'evidence' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['device', 'report', 'window end', 'requests', 'errors', 'p95', 'restarts', 'OOMs'].map((x) =>
            h('th', {}, x),
          ),
        ),
      ),
      h(
        'tbody',
        {},
        [...v.evidence]
          .sort((a, b) => a.device.localeCompare(b.device) || a.seq - b.seq)
          .map((e) =>
            h(
              'tr',
              { 'data-evidence': e.digest, 'data-held': String(e.held) },
              h('td', { title: e.device }, who(e.device, names)),
              h('td', { class: 'mono', title: e.digest }, `#${e.seq} ${e.digest.slice(0, 12)}`),
              h('td', {}, e.window ? new Date(e.window.end).toLocaleTimeString() : 'not held here'),
              h('td', { class: 'n' }, num(e.requests)),
              h('td', { class: 'n' }, num(e.errors)),
              h('td', { class: 'n' }, e.p95_ms === null ? '–' : `${num(e.p95_ms)} ms`),
              h('td', { class: 'n' }, num(e.restarts)),
              h('td', { class: 'n' }, num(e.ooms)),
            ),
          ),
      ),
    ),
    v.more > 0 ? h('p', { class: 'muted' }, `${v.more} more references not listed.`) : null,
  ]
}
