/**
 * The release cards of the dashboard (from GET /rollout and /releases): state, stage, gate figures,
 * prestaging, cohorts, verdicts, operator commands, and the operator buttons. Pure DOM building
 * with `h` (text nodes only); the caller puts the nodes in place.
 */
import { ago, bytes, duration, h, num, short } from './dom.js'

/**
 * @typedef {import('./render.js').Device} Device
 * @typedef {import('./render.js').Figure} Figure
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
 * A figure that is not met fails the stage only when the gate's outcome is `fail`; otherwise
 * (inconclusive: window not elapsed, too few reports or requests) the stage holds and waits.
 * @param {Figure[]} figures
 * @param {string} outcome
 */
function gateTable(figures, outcome) {
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
function deviceLabel(id, d) {
  return h('span', { class: 'dev', title: id }, short(id), d && d.tags.length > 0 ? ` [${d.tags.join(', ')}]` : '')
}

/**
 * What needs the operator, above the release cards: releases that fail now (their evaluation
 * throws: every other release keeps moving), releases with several valid manifests (conflicted:
 * refused on every node; or the same file published twice: the lowest seq counts), and items a
 * periodic loop fails on. Null when there is nothing to show.
 * @param {{ errors?: Array<{ model: string, version: string, code: string, message: string, count: number }>,
 *   conflicts?: Array<{ model: string, version: string, outcome: string, manifests: Array<{ seq: number, sha256: string }> }> }} rollout
 * @param {{ failing?: Array<{ loop: string, item: string, code: string, message: string, count: number }> } | undefined} loops
 */
export function renderProblems(rollout, loops) {
  const items = [
    ...(rollout.conflicts ?? []).map((c) =>
      h(
        'li',
        { 'data-problem': c.outcome, 'data-release': `${c.model}@${c.version}` },
        h('span', { class: c.outcome === 'conflicted' ? 'pill bad' : 'pill warn' }, c.outcome),
        ` ${c.model}@${c.version}: ${c.manifests.length} valid manifests (${c.manifests.map((m) => `seq ${m.seq}, file ${m.sha256.slice(0, 12)}`).join('; ')}). `,
        c.outcome === 'conflicted'
          ? 'They name different files: the version is refused on every node. Publish the intended file as a new version.'
          : 'Same file: the lowest seq counts, the others are ignored.',
      ),
    ),
    ...(rollout.errors ?? [])
      .filter((e) => e.code !== 'ERR_RELEASE_CONFLICT')
      .map((e) =>
        h(
          'li',
          { 'data-problem': 'release-error', 'data-release': `${e.model}@${e.version}` },
          h('span', { class: 'pill bad' }, e.code),
          ` ${e.model}@${e.version} cannot be evaluated (${e.count}×): ${e.message}. Other releases go on.`,
        ),
      ),
    ...(loops?.failing ?? []).map((f) =>
      h(
        'li',
        { 'data-problem': 'loop-error', 'data-loop': f.loop },
        h('span', { class: 'pill warn' }, f.loop),
        ` ${f.item}: ${f.code} ${f.message} (${f.count}×). The loop goes on with the other items.`,
      ),
    ),
  ]
  if (items.length === 0) return null
  return h('div', { class: 'card problems' }, h('h3', {}, 'Needs attention'), h('ul', {}, items))
}
