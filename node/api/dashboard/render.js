/**
 * Renders the dashboard's sections from the API's JSON (GET /dashboard/fleet, /status, /rollout,
 * /releases). Pure DOM building with `h` (text nodes only); the caller puts the nodes in place.
 */
import { ago, bytes, h, num, short } from './dom.js'

/**
 * @typedef {{ id: string, role: string, fleet: string, operator: boolean, report_interval_ms: number }} NodeInfo
 * @typedef {{ model: string, version: string, requests: number, errors: number, p95_ms: number | null }} Inference
 * @typedef {{ seq: number, window_ms: number, device_type: string, runtime_version: string, uptime_s: number,
 *   cpu_pct: number, ram_pct: number, temp_c: number | null, inference: Inference[],
 *   events: Record<string, number> }} Report
 * @typedef {{ id: string, tags: string[], enrolled: boolean, revoked: boolean, active: string[],
 *   last_seen: number | null, report: Report | null }} Device
 * @typedef {{ gate: string, value: number | null, threshold: number | null, baseline?: number | null, pass: boolean }} Figure
 * @typedef {{ model: string, version: string, seq: number, state: string, phase: string, stage: number,
 *   stageName: string, stageStartedAt: number | null, previous: string | null,
 *   gate: { outcome: string, figures: Figure[], reasons: string[], reporters: number, required: number } | null,
 *   verdicts: Array<{ digest: string, device: string, stage: number, outcome: string, decided_at: number,
 *     evidence: number, adopted: boolean, check: string }>,
 *   commands: Array<{ id: string, action: string, issued_at: number, to_stage?: string }>,
 *   cohorts: Record<string, string[]>, abortedBy?: string,
 *   prestaged?: { devices: number, of: number, missing: string[] } }} Rollout
 * @typedef {{ model: string, version: string, seq: number, size: number, chunks: number, created_at: number }} Published
 * @typedef {(action: string, model: string, version: string) => void} OnCommand
 */

/** Final states: no command moves them any more (abort is still possible after a promotion). */
const FINAL = new Set(['aborted'])

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
 * @param {string} state
 */
function stateClass(state) {
  if (state === 'aborted') return 'pill bad'
  if (state === 'paused') return 'pill warn'
  if (state === 'promoted') return 'pill good'
  return 'pill info'
}

/**
 * The operator buttons of one release.
 * @param {Rollout} r
 * @param {OnCommand} onCommand
 */
function controls(r, onCommand) {
  if (FINAL.has(r.state)) return h('p', { class: 'muted' }, 'Aborted: final, no command applies.')
  const btn = (/** @type {string} */ action, /** @type {string} */ label, cls = '') =>
    h(
      'button',
      { type: 'button', class: cls, 'data-action': action, onclick: () => onCommand(action, r.model, r.version) },
      label,
    )
  return h(
    'div',
    { class: 'actions' },
    r.state === 'paused' ? btn('resume', 'Resume') : r.state !== 'promoted' ? btn('pause', 'Pause') : null,
    r.state !== 'promoted' ? btn('promote', 'Promote to next stage') : null,
    btn('abort', 'Abort…', 'danger'),
  )
}

/**
 * A figure that is not met fails the stage only when the gate's outcome is `fail`; otherwise
 * (inconclusive: window not elapsed, too few reports or requests) the stage holds and waits.
 * @param {Figure[]} figures
 * @param {string} outcome
 */
function gateTable(figures, outcome) {
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
          h('td', { class: 'n' }, num(g.value)),
          h('td', { class: 'n' }, num(g.threshold)),
          h('td', { class: 'n' }, num(g.baseline)),
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
 * @typedef {{ key: string, state: string, body: HTMLElement, sig: string, controls: () => HTMLElement | null }} ReleaseView
 * One release's card: `body` is redrawn on every refresh; `controls` only when `sig` changes, so a
 * click on a button never lands on a node the refresh just replaced.
 */

/**
 * One view per release, newest first.
 * @param {{ rollouts: Rollout[], published: Published[] | null, devices: Map<string, Device>, operator: boolean,
 *   onCommand: OnCommand, now: number }} p
 * @returns {ReleaseView[]}
 */
export function renderReleases(p) {
  const pub = new Map((p.published ?? []).map((x) => [`${x.model}@${x.version}`, x]))
  const rs = [...p.rollouts].sort((a, b) => a.model.localeCompare(b.model) || b.seq - a.seq)
  return rs.map((r) => {
    const key = `${r.model}@${r.version}`
    const pb = pub.get(key)
    const cohortNames = Object.keys(r.cohorts)
    const body = h(
      'div',
      { class: 'card-body' },
      h(
        'div',
        { class: 'card-head' },
        h('h3', {}, key),
        h('span', { class: stateClass(r.state), 'data-role': 'state' }, r.state),
        h('span', { class: 'muted' }, `seq ${r.seq}`),
      ),
      h(
        'p',
        {},
        `Stage ${r.stage} (${r.stageName})`,
        r.stageStartedAt !== null ? `, since ${ago(r.stageStartedAt, p.now)}` : '',
        ` · phase ${r.phase} · replaces ${r.previous ?? 'nothing (first release)'}`,
        pb ? ` · ${bytes(pb.size)} in ${pb.chunks} chunks` : '',
        r.abortedBy ? ` · aborted by ${r.abortedBy}` : '',
      ),
      r.gate === null
        ? h('p', { class: 'muted' }, 'No gate evaluated for this stage.')
        : h(
            'div',
            { class: 'gate' },
            h(
              'p',
              {},
              'Gate: ',
              h('strong', {}, r.gate.outcome),
              ` · reporting devices ${r.gate.reporters} of ${r.gate.required} required`,
            ),
            r.gate.figures.length > 0 ? gateTable(r.gate.figures, r.gate.outcome) : null,
            r.gate.reasons.length > 0
              ? h(
                  'ul',
                  { class: 'reasons' },
                  r.gate.reasons.map((x) => h('li', {}, x)),
                )
              : null,
          ),
      r.prestaged
        ? h(
            'p',
            { class: 'prestaged' },
            `Prestaged on ${r.prestaged.devices} of ${r.prestaged.of} devices`,
            r.prestaged.missing.length > 0
              ? [
                  ' · missing: ',
                  r.prestaged.missing.map((id, i) => [i > 0 ? ', ' : '', deviceLabel(id, p.devices.get(id))]),
                ]
              : ' · every device holds it: the seed may go offline',
          )
        : null,
      h(
        'div',
        { class: 'cohorts' },
        h('h4', {}, 'Cohorts'),
        h(
          'ul',
          {},
          cohortNames.map((name) =>
            h(
              'li',
              { class: name === r.stageName ? 'current' : '' },
              h('strong', {}, name),
              ': ',
              r.cohorts[name].length === 0
                ? h('span', { class: 'muted' }, 'none')
                : r.cohorts[name].map((id, i) => [i > 0 ? ', ' : '', deviceLabel(id, p.devices.get(id))]),
            ),
          ),
        ),
      ),
      r.verdicts.length > 0
        ? h(
            'div',
            { class: 'verdicts' },
            h('h4', {}, 'Verdicts'),
            h(
              'ul',
              {},
              r.verdicts.map((v) =>
                h(
                  'li',
                  { 'data-verdict': v.outcome },
                  h('strong', {}, v.outcome),
                  ` stage ${v.stage} by ${short(v.device)}: ${v.evidence} signed reports as evidence, ${v.check}`,
                  v.adopted ? ', adopted' : '',
                  ` (${ago(v.decided_at, p.now)})`,
                ),
              ),
            ),
          )
        : null,
      r.commands.length > 0
        ? h(
            'p',
            { class: 'commands' },
            'Operator commands: ',
            r.commands.map((c, i) => [
              i > 0 ? ', ' : '',
              `${c.action}${c.to_stage ? ` → ${c.to_stage}` : ''} (${ago(c.issued_at, p.now)})`,
            ]),
          )
        : null,
    )
    return {
      key,
      state: r.state,
      body,
      sig: `${p.operator}:${r.state}`,
      controls: () => (p.operator ? controls(r, p.onCommand) : null),
    }
  })
}

/**
 * @param {string} id
 * @param {Device | undefined} d
 */
function deviceLabel(id, d) {
  return h('span', { class: 'dev', title: id }, short(id), d && d.tags.length > 0 ? ` [${d.tags.join(', ')}]` : '')
}

/**
 * The devices table.
 * @param {{ devices: Device[], self: string, selfModels: Record<string, any>, now: number, interval: number }} p
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
                ? 'not enrolled'
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
              short(d.id),
              d.id === p.self ? h('span', { class: 'pill info' }, 'this node') : null,
            ),
            h(
              'td',
              {},
              d.tags.length > 0
                ? d.tags.map((t) => h('span', { class: 'tag' }, t))
                : h('span', { class: 'muted' }, '–'),
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

/**
 * This node's downloads (the installer's per-model state).
 * @param {Record<string, any>} models
 */
export function renderDownloads(models) {
  const rows = Object.entries(models).filter(([, s]) => s.downloading)
  if (rows.length === 0) return [h('p', { class: 'muted' }, 'None on this node.')]
  return rows.map(([m, s]) =>
    h(
      'div',
      { class: 'download', 'data-download': `${m}@${s.downloading.version}` },
      `${m}@${s.downloading.version}: ${s.downloading.blocks_have} of ${s.downloading.blocks_total} blocks `,
      h('progress', { max: String(s.downloading.blocks_total || 1), value: String(s.downloading.blocks_have) }),
    ),
  )
}

/**
 * This node's own state from its /status.
 * @param {NodeInfo} node
 * @param {any} status
 */
export function renderSelf(node, status) {
  const models = Object.entries(status.models ?? {})
  const inf = status.inference
  const repl = status.replication
  return [
    h(
      'dl',
      {},
      h('dt', {}, 'id'),
      h('dd', { class: 'mono' }, node.id),
      h('dt', {}, 'role'),
      h('dd', {}, node.role, node.operator ? ' (holds the operator key)' : ''),
      h('dt', {}, 'fleet'),
      h('dd', {}, node.fleet),
      h('dt', {}, 'tags'),
      h('dd', {}, (status.device?.tags ?? []).join(', ') || '–'),
      h('dt', {}, 'peers'),
      h('dd', {}, String((status.peers ?? []).length)),
      h('dt', {}, 'messages held'),
      h('dd', {}, String(status.mesh?.messages ?? '–')),
      inf
        ? [
            h('dt', {}, 'inference'),
            h('dd', {}, `${inf.state}${inf.model ? ` · ${inf.model}@${inf.version}` : ''} · restarts ${inf.restarts}`),
          ]
        : null,
      repl
        ? [
            h('dt', {}, 'replication'),
            h(
              'dd',
              {},
              `in ${bytes(repl.bytesIn ?? 0)} · out ${bytes(repl.bytesOut ?? 0)} · refused blocks ${repl.invalidBlocks ?? 0}`,
            ),
          ]
        : null,
    ),
    models.length === 0
      ? h('p', { class: 'muted' }, 'No model on this node.')
      : h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['model', 'active', 'previous', 'staged', 'note'].map((x) => h('th', {}, x)),
            ),
          ),
          h(
            'tbody',
            {},
            models.map(([m, s]) =>
              h(
                'tr',
                { 'data-model': m },
                h('td', {}, m),
                h('td', {}, s.active ?? 'none'),
                h('td', {}, s.previous ?? '–'),
                h('td', {}, (s.staged ?? []).join(', ') || '–'),
                h(
                  'td',
                  {},
                  s.deactivated ? `deactivated ${s.deactivated.version}: ${s.deactivated.reason}` : '',
                  (s.refused ?? []).map((/** @type {any} */ x) => ` refused ${x.version}: ${x.code}`),
                ),
              ),
            ),
          ),
        ),
  ]
}
