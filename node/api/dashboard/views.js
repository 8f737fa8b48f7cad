/**
 * The three persona views, drawn from the fleet's history (history.js) and the rollout state:
 *   ops     — fleet health: devices offline %, memory pressure, temperature and CPU per device,
 *             failed updates per release, downloads (prestaging) across the fleet;
 *   dev     — inference quality: p95 latency and error rate per version with the gates'
 *             thresholds drawn in, tokens per version, errors per version;
 *   product — adoption (views-product.js).
 * Pure DOM building (`h`, plot.js): text nodes only.
 */
import { h, num } from './dom.js'
import { barPlot, linePlot } from './plot.js'
import { deviceName, pairs, problems, table } from './view-parts.js'

/**
 * @typedef {import('./history.js').History} History
 * @typedef {import('./render.js').Rollout} Rollout
 * @typedef {import('./render.js').Device} Device
 * @typedef {{ history: History, rollouts: Rollout[], devices: Device[], online: (d: Device) => boolean }} ViewInput
 */

/**
 * The thresholds of the gates named `prefix.*` in the current gate of each rollout still moving.
 * @param {Rollout[]} rollouts
 * @param {string} prefix
 */
function thresholds(rollouts, prefix) {
  return rollouts
    .filter((r) => r.gate !== null && r.state !== 'aborted' && r.state !== 'promoted')
    .flatMap((r) =>
      (r.gate?.figures ?? [])
        .filter((f) => f.gate.startsWith(`${prefix}.`) && f.threshold !== null)
        .map((f) => ({
          label: `${r.model}@${r.version} ${f.gate.slice(prefix.length + 1)}`,
          value: Number(f.threshold),
        })),
    )
}

/** @param {ViewInput} v */
export function renderOps(v) {
  const hi = v.history
  const enrolled = v.devices.filter((d) => d.enrolled && !d.revoked)
  const offline = enrolled.filter((d) => !v.online(d))
  const pct = enrolled.length > 0 ? (offline.length * 100) / enrolled.length : 0
  const perDevice = (/** @type {'ram_pct' | 'temp_c' | 'cpu_pct'} */ field) =>
    hi.devices.map((d) => ({
      name: deviceName(d.id, v.devices),
      points: pairs(
        d.points,
        (p) => p[field],
        (p) => p.t,
      ),
    }))
  const failed = hi.releases
    .map((r) => {
      const sum = (/** @type {'failures' | 'restarts' | 'ooms'} */ f) => r.points.reduce((n, p) => n + p[f], 0)
      const ro = v.rollouts.find((x) => `${x.model}@${x.version}` === r.key)
      return { key: r.key, failures: sum('failures'), restarts: sum('restarts'), ooms: sum('ooms'), ro }
    })
    .filter((x) => x.failures + x.restarts + x.ooms > 0 || (x.ro?.failures?.failed.length ?? 0) > 0)
  return [
    h(
      'p',
      { 'data-role': 'ops-summary' },
      `${enrolled.length} enrolled devices, ${offline.length} offline (${num(pct)} %)`,
      offline.length > 0 ? `: ${offline.map((d) => deviceName(d.id, v.devices)).join(', ')}` : '',
    ),
    problems(hi),
    h(
      'div',
      { class: 'plots' },
      linePlot({
        id: 'offline',
        title: 'Devices offline % (7 days, hourly)',
        series: [
          {
            name: 'offline %',
            points: pairs(
              hi.fleet,
              (p) => p.offline_ratio * 100,
              (p) => p.t,
            ),
          },
        ],
        unit: ' %',
        yMax: 100,
        from: hi.to - 7 * 86_400_000,
        to: hi.to,
      }),
      linePlot({
        id: 'ram',
        title: 'Memory pressure: RAM % per device',
        series: perDevice('ram_pct'),
        unit: ' %',
        yMax: 100,
        from: hi.from,
        to: hi.to,
      }),
      linePlot({
        id: 'temp',
        title: 'Temperature per device',
        series: perDevice('temp_c'),
        unit: ' °C',
        from: hi.from,
        to: hi.to,
      }),
      linePlot({
        id: 'cpu',
        title: 'CPU % per device',
        series: perDevice('cpu_pct'),
        unit: ' %',
        yMax: 100,
        from: hi.from,
        to: hi.to,
      }),
    ),
    h('h3', {}, 'Devices over the last 6 h (every report, not only the latest window)'),
    table(
      'device-totals',
      ['device', 'reports', 'requests', 'errors', 'mean CPU %', 'peak RAM %', 'peak °C'],
      hi.devices.map((d) => {
        const sum = (/** @type {'reports' | 'requests' | 'errors'} */ f) => d.points.reduce((n, p) => n + p[f], 0)
        const peak = (/** @type {'ram_pct' | 'temp_c'} */ f) => {
          const vs = d.points.map((p) => p[f]).filter((v) => v !== null)
          return vs.length > 0 ? num(Math.max(...vs)) : '–'
        }
        const cpu = d.points.filter((p) => p.cpu_pct !== null)
        // a bucket's cpu_pct is a mean over its reports: weigh by reports
        const reports = cpu.reduce((n, p) => n + p.reports, 0)
        const mean = reports > 0 ? num(cpu.reduce((n, p) => n + (p.cpu_pct ?? 0) * p.reports, 0) / reports) : '–'
        return {
          key: d.id,
          cells: [
            deviceName(d.id, v.devices),
            sum('reports'),
            sum('requests'),
            sum('errors'),
            mean,
            peak('ram_pct'),
            peak('temp_c'),
          ],
        }
      }),
    ),
    h('h3', {}, 'Failed updates (last 6 h)'),
    table(
      'failed-updates',
      ['release', 'state', 'load/probe failures and rollbacks', 'restarts', 'OOMs', 'failed devices'],
      failed.map((x) => ({
        key: x.key,
        cells: [
          x.key,
          x.ro?.state ?? '–',
          x.failures,
          x.restarts,
          x.ooms,
          x.ro?.failures ? `${x.ro.failures.failed.length} of ${x.ro.failures.cohort}` : '–',
        ],
      })),
    ),
    h('h3', {}, 'Downloads across the fleet'),
    table(
      'fleet-downloads',
      ['release', 'devices holding it', ''],
      v.rollouts
        .filter((r) => r.state !== 'aborted' && r.prestaged.of > 0)
        .map((r) => ({
          key: `${r.model}@${r.version}`,
          cells: [
            `${r.model}@${r.version}`,
            `${r.prestaged.devices} of ${r.prestaged.of}`,
            h('progress', { max: String(r.prestaged.of), value: String(r.prestaged.devices) }),
          ],
        })),
    ),
  ]
}

/** @param {ViewInput} v */
export function renderDev(v) {
  const hi = v.history
  const line = (/** @type {(p: import('./history.js').ReleasePoint) => number | null} */ f) =>
    hi.releases.map((r) => ({ name: r.key, points: pairs(r.points, f, (p) => p.t) }))
  const totals = hi.releases.map((r) => {
    const req = r.points.reduce((n, p) => n + p.requests, 0)
    const err = r.points.reduce((n, p) => n + p.errors, 0)
    return {
      key: r.key,
      cells: [r.key, req, err, req > 0 ? num(err / req) : '–', r.points.reduce((n, p) => n + p.tokens_out, 0)],
    }
  })
  return [
    problems(hi),
    h(
      'div',
      { class: 'plots' },
      linePlot({
        id: 'p95',
        title: 'p95 latency per version (fleet, merged sketches), with the gates’ thresholds',
        series: line((p) => p.p95_ms),
        thresholds: thresholds(v.rollouts, 'latency_p95_ms'),
        unit: ' ms',
        from: hi.from,
        to: hi.to,
      }),
      linePlot({
        id: 'error-rate',
        title: 'Error rate per version, with the gates’ thresholds',
        series: line((p) => p.error_rate),
        thresholds: thresholds(v.rollouts, 'error_rate'),
        from: hi.from,
        to: hi.to,
      }),
      linePlot({
        id: 'tokens',
        title: 'Tokens out per version',
        series: line((p) => p.tokens_out),
        from: hi.from,
        to: hi.to,
      }),
      linePlot({
        id: 'requests',
        title: 'Requests per version',
        series: line((p) => p.requests),
        from: hi.from,
        to: hi.to,
      }),
    ),
    h('h3', {}, 'Requests and errors per version (last 6 h)'),
    table('version-errors', ['version', 'requests', 'errors', 'error rate', 'tokens out'], totals),
    ...qualityParts(v.rollouts),
  ]
}

/**
 * The quality probes' figures per version: from the release's current gate evaluation while it
 * rolls, else from its latest verdict (adopted first), so a promoted or aborted release keeps the
 * figures it was judged on. Greedy-token agreement against the minimum, and perplexity against the
 * baseline of the devices on the previous version.
 * @param {Rollout[]} rollouts
 */
function qualityParts(rollouts) {
  const rows = rollouts
    .map((r) => {
      const live = (r.gate?.figures ?? []).filter((f) => f.gate.startsWith('quality.'))
      const judged = [...r.verdicts].sort(
        (a, b) => Number(a.adopted) - Number(b.adopted) || a.decided_at - b.decided_at,
      )
      const figures = live.length > 0 ? live : (judged.at(-1)?.quality ?? [])
      const fig = (/** @type {string} */ g) => figures.find((f) => f.gate === g)
      return {
        key: `${r.model}@${r.version}`,
        agreement: fig('quality.agreement'),
        ppl: fig('quality.perplexity.regression'),
        tokens: fig('quality.tokens'),
      }
    })
    .filter((q) => q.agreement !== undefined || q.ppl !== undefined)
  const val = (/** @type {{ value: number | null } | undefined} */ f) => (f?.value == null ? '–' : num(f.value))
  return [
    h('h3', {}, 'Quality probes per version (as judged: the current gate, or the latest verdict)'),
    barPlot({
      id: 'quality-agreement',
      title: 'Greedy-token agreement with the reference outputs, per version',
      groups: rows.map((q) => q.key),
      series: [{ name: 'agreement', values: rows.map((q) => q.agreement?.value ?? 0) }],
    }),
    table(
      'quality',
      ['version', 'probe tokens', 'agreement', 'min agreement', 'perplexity', 'baseline', 'allowed', 'pass'],
      rows.map((q) => ({
        key: q.key,
        cells: [
          q.key,
          val(q.tokens),
          val(q.agreement),
          q.agreement?.threshold == null ? '–' : num(q.agreement.threshold),
          val(q.ppl),
          q.ppl?.baseline == null ? '–' : num(q.ppl.baseline),
          q.ppl?.threshold == null ? '–' : num(q.ppl.threshold),
          [q.agreement, q.ppl].every((f) => f === undefined || f.pass) ? 'yes' : 'no',
        ],
      })),
    ),
  ]
}
