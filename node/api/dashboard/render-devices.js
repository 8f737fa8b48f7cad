/**
 * The devices table of the dashboard (from GET /dashboard/fleet and this node's /status), with each
 * device's online status. Pure DOM building with `h` (text nodes only).
 */
import { ago, h, num, short } from './dom.js'

/** @typedef {import('./render.js').Device} Device */

/**
 * A device is online when its latest report is no older than three report intervals.
 * @param {Device} d
 * @param {number} now
 * @param {number} interval
 */
export function isOnline(d, now, interval) {
  return d.last_seen !== null && now - d.last_seen <= 3 * interval + 5000
}

/**
 * A device's agent cell: the llmesh version its latest report names, and `stuck` when the fleet
 * refuses that version and the device has none to go back to (the reason as the pill's title).
 * @param {Device} d
 */
function renderAgent(d) {
  return h(
    'td',
    { 'data-agent': d.agent_version ?? '' },
    d.agent_version ?? h('span', { class: 'muted' }, '–'),
    d.agent_stuck === null
      ? null
      : h('span', { class: 'pill bad', 'data-agent-stuck': '', title: d.agent_stuck }, 'stuck'),
  )
}

/**
 * The devices table.
 * @param {{ devices: Device[], self: string, selfModels: Record<string, import('../status.ts').ModelStatus>, now: number, interval: number }} p
 */
export function renderDevices(p) {
  if (p.devices.length === 0) return [h('p', { class: 'muted' }, 'No device known yet.')]
  return [
    h(
      'table',
      { class: 'devices' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          [
            'device',
            'tags',
            'status',
            'last seen',
            'active',
            'staged',
            'agent',
            'requests / errors',
            'p95',
            'events',
            'cpu / ram',
          ].map((x) => h('th', {}, x)),
        ),
      ),
      h(
        'tbody',
        {},
        p.devices.map((d) => {
          const online = isOnline(d, p.now, p.interval)
          const r = d.report
          const reqs = r ? r.inference.reduce((s, i) => s + i.requests, 0) : null
          const errs = r ? r.inference.reduce((s, i) => s + i.errors, 0) : null
          const p95 = r ? r.inference.map((i) => i.p95_ms).filter((x) => x !== null) : []
          const ev = r ? Object.entries(r.events).filter(([, n]) => n > 0) : []
          const staged =
            d.id === p.self
              ? Object.entries(p.selfModels).flatMap(([m, s]) => (s.staged ?? []).map((v) => `${m}@${v}`))
              : (d.staged ?? null)
          const status = d.revoked
            ? 'revoked'
            : d.id === p.self
              ? 'online'
              : !d.enrolled
                ? 'pending'
                : r === null
                  ? 'no reports'
                  : online
                    ? 'online'
                    : 'offline'
          return h(
            'tr',
            { 'data-device': d.id, 'data-status': status },
            h(
              'td',
              { title: d.id },
              d.name === null ? short(d.id) : `${d.name} · ${short(d.id)}`,
              d.id === p.self ? h('span', { class: 'pill info' }, 'this node') : null,
              d.site ? h('span', { class: 'pill', 'data-site': d.site }, `site ${d.site}`) : null,
            ),
            h(
              'td',
              {},
              d.tags.length > 0
                ? d.tags.map((t) => h('span', { class: 'tag' }, t))
                : h('span', { class: 'muted' }, '–'),
              // what a device says of itself: shown, never used for cohorts
              !d.enrolled && d.declared_tags && d.declared_tags.length > 0
                ? h('span', { class: 'muted', 'data-declared': '' }, ` declared: ${d.declared_tags.join(', ')}`)
                : null,
            ),
            h(
              'td',
              {},
              h(
                'span',
                {
                  class:
                    status === 'online'
                      ? 'pill good'
                      : status === 'offline' || status === 'no reports'
                        ? 'pill warn'
                        : 'pill bad',
                },
                status,
              ),
            ),
            h('td', {}, ago(d.last_seen, p.now)),
            h('td', {}, d.active.length > 0 ? d.active.join(', ') : h('span', { class: 'muted' }, 'none')),
            h(
              'td',
              {},
              staged === null
                ? h('span', { class: 'muted', title: 'this device’s reports do not list staged versions' }, 'n/a')
                : staged.join(', ') || '–',
            ),
            renderAgent(d),
            h('td', { class: 'n' }, reqs === null ? '–' : `${reqs} / ${errs}`),
            h('td', { class: 'n' }, p95.length > 0 ? `${num(Math.max(...p95))} ms` : '–'),
            h('td', {}, r === null ? '–' : ev.length === 0 ? 'none' : ev.map(([k, n]) => `${k} ${n}`).join(', ')),
            h('td', { class: 'n' }, r === null ? '–' : `${num(r.cpu_pct)} % / ${num(r.ram_pct)} %`),
          )
        }),
      ),
    ),
    h('p', { class: 'muted' }, 'Figures from each device’s latest signed health report.'),
  ]
}
