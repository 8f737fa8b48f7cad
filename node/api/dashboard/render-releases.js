/**
 * The release cards of the dashboard (from GET /rollout and /releases): state, stage, gate figures,
 * prestaging, cohorts, verdicts, operator commands, and the operator buttons. Pure DOM building
 * with `h` (text nodes only); the caller puts the nodes in place. The card's parts (gate table,
 * failed devices, device labels) are in release-parts.js; the problems above the cards in
 * render-problems.js.
 */
import { ago, bytes, h, short } from './dom.js'
import { deviceLabel, failedDevices, gateTable } from './release-parts.js'

export { failedDevices } from './release-parts.js'

/**
 * @typedef {import('./render.js').Device} Device
 * @typedef {import('./render.js').Rollout} Rollout
 * @typedef {import('./render.js').Published} Published
 * @typedef {import('./render.js').OnCommand} OnCommand
 */

/** Final states: no command moves them any more (abort is still possible after a promotion). */
const FINAL = new Set(['aborted'])

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
        r.downgradeFrom ? ` · downgrade from ${r.downgradeFrom}, allowed by the operator` : '',
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
      failedDevices(r, p.devices),
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
