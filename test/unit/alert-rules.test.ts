/**
 * The Prometheus alerting rules in docs/alerts/llmesh.rules.yml:
 * - `promtool check rules` accepts them;
 * - `promtool test rules test/fixtures/alert-rules.test.yml` passes: each alert fires on its bad
 *   synthetic series and stays silent on the healthy ones (the fixture lists every expected alert);
 * - the fixture really catches broken rules: each mutation below (a threshold, a selector, a
 *   metric name, the handling of counters born at their first increment) must make it fail;
 * - every metric and label the rules use exists in node/inference/metrics.ts, node/rollout/metrics.ts
 *   and the other metric modules of a device (each built on its own registry), so renaming a metric or a label breaks this test,
 *   not the on-call's night;
 * - every alert has a severity and a runbook_url whose anchor is a heading of docs/runbook.md.
 * promtool comes from Debian's `prometheus` (.ci/run installs it): without it the promtool tests
 * are skipped with a reason, except under CI=true, where they fail.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { before, describe, test } from 'node:test'
import { Histogram, Registry } from 'prom-client'
import { parse, stringify } from 'yaml'
import { buildProgram } from '../../cli/program.ts'
import { registerAgentMetrics } from '../../node/agent-update/metrics.ts'
import { InferenceMetrics } from '../../node/inference/metrics.ts'
import { createMeshMetrics } from '../../node/mesh/mesh-metrics.ts'
import { storeHealth } from '../../node/mesh/store-load.ts'
import { createStoreMetrics } from '../../node/mesh/store-metrics.ts'
import { RolloutMetrics } from '../../node/rollout/metrics.ts'
import { createReplicationMetrics } from '../../node/store/replication-metrics.ts'
import { parsePolicyYaml } from '../../protocols/rollout/policy-yaml.ts'
import { scaled, suiteTmpDir } from '../helpers/index.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const RULES = join(ROOT, 'docs/alerts/llmesh.rules.yml')
const FIXTURE = join(ROOT, 'test/fixtures/alert-rules.test.yml')
/** The day-over-day rules' tests: more than a day of series, evaluated every 5 minutes. */
const DAILY_FIXTURE = join(ROOT, 'test/fixtures/alert-rules-daily.test.yml')
const FIXTURES = [FIXTURE, DAILY_FIXTURE]
const RUNBOOK = join(ROOT, 'docs/runbook.md')
const PROMTOOL = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool'
const hasPromtool = existsSync(PROMTOOL)
const skip = !hasPromtool && process.env.CI !== 'true' ? `missing ${PROMTOOL} (apt install prometheus)` : false

interface Rule {
  alert: string
  expr: string
  for?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

async function loadRules(): Promise<Rule[]> {
  const doc = parse(await readFile(RULES, 'utf8')) as { groups: Array<{ rules: Rule[] }> }
  return doc.groups.flatMap((g) => g.rules)
}

function promtool(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    execFile(PROMTOOL, args, { timeout: scaled(60_000) }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      done({ code, out: `${stdout}${stderr}` })
    })
  })
}

/**
 * Ways to break a rule that the fixture must notice: [alert, text in that alert's block, replacement].
 * A mutation whose text is no longer in the rule fails the test too (update it with the rule).
 */
const MUTATIONS: Array<[string, string, string]> = [
  ['LlmeshRestartLoop', ') > 3', ') > 4'],
  ['LlmeshRestartLoop', ') > 3', ') > 2'],
  // counting with increase() alone (extrapolated), or the exact difference across a counter reset
  ['LlmeshRestartLoop', 'or (llmesh_inference_restarts_total - llmesh_inference_restarts_total offset 5m >= 0)', ''],
  ['LlmeshRestartLoop', 'offset 5m >= 0)', 'offset 5m)'],
  [
    'LlmeshRestartLoop',
    'increase(llmesh_inference_restarts_total[5m])',
    'increase(llmesh_inference_restarts_total[2m])',
  ],
  // without the branch for counters born at their first increment
  ['LlmeshOutOfMemory', 'unless llmesh_inference_oom_total offset 15m', 'unless llmesh_inference_oom_total'],
  ['LlmeshModelLoadFailure', 'sum by (job, instance, model, model_version, reason)', 'sum by (job, instance, model)'],
  ['LlmeshModelProbeFailure', 'llmesh_inference_probe_failures_total', 'llmesh_inference_probe_failure_total'],
  ['LlmeshErrorRateHigh', ') > 0.05', ') > 0.2'],
  ['LlmeshErrorRateHigh', ') > 0.05', ') > 0.01'],
  ['LlmeshErrorRateHigh', 'for: 5m', 'for: 1m'],
  ['LlmeshErrorRateHigh', '[10m])) >= 0.01', '[10m])) >= 0'],
  ['LlmeshP95LatencyHigh', ') > 30', ') > 60'],
  ['LlmeshP95LatencyHigh', 'sum by (job, instance, model, model_version, le)', 'sum by (job, instance, model, le)'],
  [
    'LlmeshP95LatencyAboveFleet',
    '1.5 * quantile by (job, model, model_version) (0.5,',
    '1.5 * max by (job, model, model_version) (',
  ],
  ['LlmeshP95LatencyAboveFleet', ') >= 3', ') >= 5'],
  ['LlmeshP95LatencyAboveFleet', ') >= 3', ') >= 2'],
  ['LlmeshP95LatencyAboveFleet', '1.5 * quantile', '20 * quantile'],
  ['LlmeshCanaryP95Regression', '{rollout_stage!~"promoted|aborted|none"}', ''],
  ['LlmeshCanaryP95Regression', '{rollout_stage="promoted"}', '{rollout_stage="canary"}'],
  ['LlmeshCanaryP95Regression', '1.25 * min by', '3 * min by'],
  ['LlmeshCanaryP95Regression', '1.25 * min by', '1 * min by'],
  ['LlmeshNodeDown', 'up{job=~"llmesh.*"}', 'up'],
  ['LlmeshNodeDown', 'for: 5m', 'for: 1m'],
  ['LlmeshNodeNotServing', '== 0', '== 1'],
  // one alert per release (not per node), on aborted == 1 only, for 30 minutes after the abort
  [
    'LlmeshReleaseAborted',
    'max by (job, model, model_version) (llmesh_rollout_release_state{state="aborted"} == 1)',
    'llmesh_rollout_release_state{state="aborted"} == 1',
  ],
  ['LlmeshReleaseAborted', '{state="aborted"} == 1)\n', '{state="aborted"})\n'],
  ['LlmeshReleaseAborted', 'offset 30m == 1)', 'offset 30m)'],
  ['LlmeshReleaseAborted', 'offset 30m == 1)', 'offset 5m == 1)'],
  // counters born at their first increment, counters already there, and the peer id of the device
  [
    'LlmeshLocalRollback',
    'unless llmesh_rollout_local_rollbacks_total offset 30m',
    'unless llmesh_rollout_local_rollbacks_total',
  ],
  ['LlmeshLocalRollback', 'or increase(llmesh_rollout_local_rollbacks_total[30m])', ''],
  ['LlmeshLocalRollback', ') > 0', ') > 1'],
  ['LlmeshLocalRollback', 'offset 30m', 'offset 2h'],
  [
    'LlmeshLocalRollback',
    '* on (job, instance) group_left (peer_id) max by (job, instance, peer_id) (llmesh_node_info)',
    '',
  ],
  // counters born at their first increment (the first scrape after the rollback), one alert per version
  ['LlmeshAgentRollback', 'unless llmesh_agent_rollbacks_total offset 30m', 'unless llmesh_agent_rollbacks_total'],
  ['LlmeshAgentRollback', 'or increase(llmesh_agent_rollbacks_total[30m])', ''],
  ['LlmeshAgentRollback', 'sum by (job, instance, version)', 'sum by (job, instance)'],
  ['LlmeshAgentRollback', ') > 0\n', ') > 1\n'],
  ['LlmeshAgentRollback', 'group_left (peer_id)', 'group_left ()'],
  // 1 only, for 5 minutes, one alert per device and version, with its peer id
  ['LlmeshAgentStuck', '== 1)', '== 0)'],
  ['LlmeshAgentStuck', 'for: 5m', 'for: 1m'],
  [
    'LlmeshAgentStuck',
    'max by (job, instance, version) (llmesh_agent_stuck)',
    'max by (job, instance) (llmesh_agent_stuck)',
  ],
  ['LlmeshAgentStuck', 'group_left (peer_id)', 'group_left ()'],
  ['LlmeshModelDeactivated', 'for: 2m', 'for: 30s'],
  ['LlmeshModelDeactivated', '(llmesh_model_deactivated_info == 1)', '(llmesh_model_deactivated_info == 0)'],
  ['LlmeshModelDeactivated', 'group_left (peer_id)', 'group_left ()'],
  ['LlmeshReleasePausedTooLong', '> 24 * 3600', '> 12 * 3600'],
  ['LlmeshReleasePausedTooLong', '> 24 * 3600', '> 48 * 3600'],
  ['LlmeshReleasePausedTooLong', 'max by (job, model, model_version)', 'max by (job, instance, model, model_version)'],
  // one alert per release whatever the number of nodes; a blip is not an alert; a fixed one resolves
  ['LlmeshReleaseEvaluationFailing', 'for: 5m', 'for: 1m'],
  [
    'LlmeshReleaseEvaluationFailing',
    'count by (job, model, model_version, code)',
    'count by (job, instance, model, model_version, code)',
  ],
  ['LlmeshReleaseEvaluationFailing', '[3m]) > 0)', '[3m]) > 200)'],
  ['LlmeshReleaseEvaluationFailing', '[3m]', '[30m]'],
  ['LlmeshReleaseEvaluationFailing', 'llmesh_rollout_release_errors_total', 'llmesh_rollout_release_error_total'],
  ['LlmeshLoopErrors', 'for: 15m', 'for: 5m'],
  ['LlmeshLoopErrors', ')) > 0)', ')) > 20)'],
  ['LlmeshLoopErrors', 'sum by (job, instance, loop)', 'sum by (job, instance)'],
  ['LlmeshLoopErrors', 'group_left (peer_id)', 'group_left ()'],
  ['LlmeshStoreDiskFull', 'for: 5m', 'for: 15m'],
  ['LlmeshStoreDiskFull', '== 1)', '== 0)'],
  ['LlmeshStoreDiskFull', 'llmesh_store_disk_full', 'llmesh_store_disk_ful'],
  ['LlmeshP95ChangedSinceYesterday', '> 1.5 *', '> 2.5 *'],
  ['LlmeshP95ChangedSinceYesterday', '[30m] offset 1d))\n', '[30m]))\n'],
  ['LlmeshP95ChangedSinceYesterday', '[30m] offset 1d)) > 0.01', '[30m])) > 0.01'],
  ['LlmeshP95ChangedSinceYesterday', 'for: 30m', 'for: 5m'],
  ['LlmeshNodeIsolated', '== 0)', '== 1)'],
  ['LlmeshNodeIsolated', 'for: 10m', 'for: 1m'],
  ['LlmeshNodeIsolated', 'group_left (peer_id)', 'group_left ()'],
  ['LlmeshGossipRejections', '[10m])) > 10)', '[10m])) > 100)'],
  ['LlmeshGossipRejections', '{outcome="rejected"}', ''],
  ['LlmeshGossipRejections', 'for: 10m', 'for: 1m'],
  [
    'LlmeshForgedMessages',
    'increase(llmesh_ingest_rejections_total{code=~"ERR_BAD_SIGNATURE|ERR_UNKNOWN_SIGNER|ERR_REVOKED|ERR_WRONG_FLEET"}',
    'increase(llmesh_ingest_rejections_total',
  ],
  ['LlmeshForgedMessages', 'offset 15m)\n              or increase', 'offset 15m) * 0\n              or increase'],
  ['LlmeshForgedMessages', ') > 0\n', ') > 1\n'],
  ['LlmeshForgedMessages', 'group_left (peer_id)', 'group_left ()'],
  ['LlmeshReplicationRecycling', ') > 3)', ') > 10)'],
  ['LlmeshReplicationRecycling', ') > 3)', ') > 1)'],
  ['LlmeshReplicationRecycling', '[15m]', '[5m]'],
  [
    'LlmeshReplicationRecycling',
    'increase(llmesh_replication_recycles_total[15m])',
    'llmesh_replication_recycles_total',
  ],
  ['LlmeshReplicationRecycling', 'group_left (peer_id)', 'group_left ()'],
  ['LlmeshPeerBanned', ') > 0)', ') > 1)'],
  ['LlmeshPeerBanned', 'bans_total[15m]', 'bans_total[1m]'],
  ['LlmeshPeerBanned', 'increase(llmesh_mesh_peer_bans_total[15m])', 'llmesh_mesh_peer_bans_total'],
  ['LlmeshPeerBanned', 'group_left (peer_id)', 'group_left ()'],
]

/** promtool runs at once in the mutation test (each mutant has its own directory). */
const MUTANTS_AT_ONCE = 4

/** Applies one mutation inside the block of `alert` (the text up to the next rule). */
function mutate(text: string, alert: string, from: string, to: string): string {
  const start = text.indexOf(`- alert: ${alert}\n`)
  assert.ok(start >= 0, `no rule ${alert}`)
  const next = text.indexOf('- alert: ', start + 1)
  const end = next < 0 ? text.length : next
  const block = text.slice(start, end)
  assert.ok(block.includes(from), `mutation of ${alert}: ${JSON.stringify(from)} not in its rule any more`)
  return text.slice(0, start) + block.replace(from, to) + text.slice(end)
}

describe('alerting rules with promtool', { skip, timeout: scaled(300_000) }, () => {
  const dir = suiteTmpDir('llmesh-alerts-')
  before(async () => {
    assert.ok(hasPromtool, `CI=true and ${PROMTOOL} is missing (apt install prometheus)`)
  })

  test('promtool check rules accepts the rules file', async () => {
    const { code, out } = await promtool(['check', 'rules', RULES])
    assert.equal(code, 0, out)
    assert.match(out, new RegExp(`SUCCESS: ${(await loadRules()).length} rules found`))
  })

  test('promtool test rules: each alert fires on the bad series and only there', async () => {
    const { code, out } = await promtool(['test', 'rules', ...FIXTURES])
    assert.equal(code, 0, out)
    assert.match(out, /SUCCESS/)
  })

  test('the fixture tests every alert of the rules file', async () => {
    type Fixture = { tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }> }
    const fixtures = await Promise.all(FIXTURES.map(async (f) => parse(await readFile(f, 'utf8')) as Fixture))
    const cases = fixtures.flatMap((fx) => fx.tests.flatMap((t) => t.alert_rule_test ?? []))
    for (const { alert } of await loadRules()) {
      const mine = cases.filter((c) => c.alertname === alert)
      assert.ok(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert}: no case where it must fire`,
      )
    }
  })

  test('a broken rule makes promtool test rules fail', async () => {
    const original = await readFile(RULES, 'utf8')
    const copies = await Promise.all(
      FIXTURES.map(async (f) => (await readFile(f, 'utf8')).replace('../../docs/alerts/llmesh.rules.yml', 'rules.yml')),
    )
    for (const c of copies) assert.match(c, /- rules\.yml/)
    /** Writes the fixtures into `d` (beside its rules.yml); returns their paths. */
    const writeFixtures = (d: string): Promise<string[]> =>
      Promise.all(
        copies.map(async (c, i) => {
          const path = join(d, `test${i}.yml`)
          await writeFile(path, c)
          return path
        }),
      )
    // the unmutated copy passes in the temp dir: the failures below come from the mutations
    await writeFile(join(dir, 'rules.yml'), original)
    assert.equal((await promtool(['test', 'rules', ...(await writeFixtures(dir))])).code, 0)
    const survived: string[] = []
    /**
     * The fixtures cut to the test groups that check `alert` (a mutation changes only that rule, so
     * only those groups can catch it): a tenth of promtool's work per mutant.
     */
    type Group = { alert_rule_test?: Array<{ alertname: string }> }
    const parsed = copies.map((c) => parse(c) as { tests: Group[] } & Record<string, unknown>)
    const writeFixturesFor = async (d: string, alert: string): Promise<string[]> => {
      const out: string[] = []
      for (const [i, fx] of parsed.entries()) {
        const tests = fx.tests.filter((g) => (g.alert_rule_test ?? []).some((c) => c.alertname === alert))
        if (tests.length === 0) continue
        const path = join(d, `test${i}.yml`)
        await writeFile(path, stringify({ ...fx, tests }))
        out.push(path)
      }
      assert.ok(out.length > 0, `no test group checks ${alert}`)
      return out
    }
    // every alert's cut fixtures pass against the unmutated rules: a failure below is the mutation's
    await Promise.all(
      [...new Set(MUTATIONS.map(([alert]) => alert))].map(async (alert) => {
        const base = join(dir, `base-${alert}`)
        await mkdir(base)
        await writeFile(join(base, 'rules.yml'), original)
        const r = await promtool(['test', 'rules', ...(await writeFixturesFor(base, alert))])
        assert.equal(r.code, 0, `${alert}: the cut fixtures fail unmutated: ${r.out}`)
      }),
    )
    // each mutant in its own directory, a few promtool runs at a time
    const queue = MUTATIONS.map((m, i) => [i, ...m] as const)
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const [i, alert, from, to] = next
        const sub = join(dir, `m${i}`)
        await mkdir(sub)
        const tests = await writeFixturesFor(sub, alert)

        await writeFile(join(sub, 'rules.yml'), mutate(original, alert, from, to))
        const check = await promtool(['check', 'rules', join(sub, 'rules.yml')])
        assert.equal(check.code, 0, `mutant of ${alert} is not even valid: ${check.out}`)
        const { code } = await promtool(['test', 'rules', ...tests])
        if (code === 0) survived.push(`${alert}: ${JSON.stringify(from)} -> ${JSON.stringify(to)}`)
      }
    }
    await Promise.all(Array.from({ length: MUTANTS_AT_ONCE }, worker))
    assert.deepEqual(survived.sort(), [], 'mutations the fixture did not catch')
  })
})

describe('alerting rules against the metrics a device exposes', () => {
  test('every metric and label the rules use is registered by InferenceMetrics, RolloutMetrics, the store, mesh, replication or agent metrics', async () => {
    const registered = new Map<string, Set<string>>()
    const store = createStoreMetrics({ health: storeHealth(), size: 0 })
    const zero = {
      accepted: 0,
      duplicate: 0,
      rejected: 0,
      ignored: 0,
      rounds: 0,
      received: 0,
      sent: 0,
      failures: 0,
      errors: 0,
    }
    const mesh = createMeshMetrics({
      state: 'stopped',
      peers: () => [],
      ingest: { counters: zero, rejectedByCode: new Map() },
      gossip: { counters: zero },
      antiEntropy: { counters: zero },
    })
    const replication = createReplicationMetrics(() => undefined)
    const agent = { registry: new Registry() }
    registerAgentMetrics(agent.registry, () => ({ version: '0.9.2', state: 'idle' }))
    const all = [new InferenceMetrics(), new RolloutMetrics(), store, mesh, replication, agent].flatMap((x) =>
      x.registry.getMetricsAsArray(),
    )
    for (const m of all) {
      assert.ok(!registered.has(m.name), `${m.name} registered twice: one /metrics serves both registries`)
      const labels = new Set([...((m as unknown as { labelNames?: string[] }).labelNames ?? []), 'job', 'instance'])
      registered.set(m.name, labels)
      if (m instanceof Histogram) {
        for (const s of ['_bucket', '_count', '_sum']) {
          registered.set(m.name + s, new Set([...labels, ...(s === '_bucket' ? ['le'] : [])]))
        }
      }
    }
    registered.set('up', new Set(['job', 'instance']))
    const rules = await loadRules()
    const allLabels = new Set([...registered.values()].flatMap((s) => [...s]))
    const used = new Set<string>()
    for (const r of rules) {
      // metric names: identifiers followed by `{`, `[` or `)`/space in the expression
      const names = [...r.expr.matchAll(/\b(llmesh_[a-z_]+|up)\b/g)].map((m) => m[1])
      assert.ok(names.length > 0, `${r.alert} uses no metric`)
      for (const n of names) {
        used.add(n)
        assert.ok(registered.has(n), `${r.alert}: metric ${n} is exposed by neither class`)
      }
      // labels in selectors: {a="x", b!~"y"} of a metric must belong to that metric
      for (const m of r.expr.matchAll(/\b(llmesh_[a-z_]+|up)\{([^}]*)\}/g)) {
        for (const l of m[2].matchAll(/([a-z_]+)\s*(?:=|!=|=~|!~)/g)) {
          assert.ok(registered.get(m[1])?.has(l[1]), `${r.alert}: ${m[1]} has no label ${l[1]}`)
        }
      }
      // labels in by (…) / on (…) groupings must exist on some llmesh metric
      for (const m of r.expr.matchAll(/\b(?:by|on)\s*\(([^)]*)\)/g)) {
        for (const l of m[1].split(',').map((s) => s.trim())) {
          assert.ok(allLabels.has(l), `${r.alert}: grouping label ${l} exists on no metric`)
        }
      }
    }
    // what the rules are about is really there
    for (const n of [
      'llmesh_inference_request_duration_seconds_bucket',
      'llmesh_inference_requests_total',
      'llmesh_inference_restarts_total',
      'llmesh_inference_oom_total',
      'llmesh_inference_load_failures_total',
      'llmesh_inference_probe_failures_total',
      'llmesh_inference_ready',
      'llmesh_node_info',
      'llmesh_rollout_release_state',
      'llmesh_rollout_release_paused_since_timestamp_seconds',
      'llmesh_rollout_local_rollbacks_total',
      'llmesh_model_deactivated_info',
      'llmesh_rollout_release_errors_total',
      'llmesh_loop_errors_total',
      'llmesh_mesh_peers',
      'llmesh_gossip_messages_total',
      'llmesh_replication_recycles_total',
      'llmesh_mesh_peer_bans_total',
      'llmesh_agent_stuck',
      'up',
    ]) {
      assert.ok(used.has(n), `no rule uses ${n}`)
    }
  })

  test('every alert has a severity and a runbook_url to a section of docs/runbook.md', async () => {
    const runbook = await readFile(RUNBOOK, 'utf8')
    const anchors = new Set(
      [...runbook.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) =>
        m[1]
          .trim()
          .toLowerCase()
          .replace(/[^\p{L}\p{N} _-]/gu, '')
          .replace(/ /g, '-'),
      ),
    )
    const rules = await loadRules()
    assert.equal(new Set(rules.map((r) => r.alert)).size, rules.length, 'alert names are unique')
    for (const r of rules) {
      assert.match(r.labels?.severity ?? '', /^(critical|warning)$/, `${r.alert}: severity`)
      assert.match(r.labels?.runbook_step ?? '', /^(detect|triage|contain|mitigate|investigate|fix)$/, r.alert)
      const url = r.annotations?.runbook_url ?? ''
      const m = /^docs\/runbook\.md#(.+)$/.exec(url)
      assert.ok(m, `${r.alert}: runbook_url ${url}`)
      assert.ok(anchors.has(m[1]), `${r.alert}: docs/runbook.md has no heading for #${m[1]}`)
      assert.ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary and description`)
    }
  })
})

describe('docs/runbook.md', () => {
  /** The shell lines of the runbook's sh blocks and inline code that run `llmesh`, continuations joined. */
  async function llmeshCommands(): Promise<string[]> {
    const text = await readFile(RUNBOOK, 'utf8')
    const lines: string[] = []
    for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
      lines.push(...block[1].replace(/\\\n\s*/g, ' ').split('\n'))
    }
    for (const code of text.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`]+)`/g)) lines.push(code[1])
    return lines
      .map((l) =>
        l
          .replace(/\s+#.*$/, '')
          .split(' | ')[0]
          .trim(),
      )
      .filter((l) => /^llmesh\s/.test(l))
  }

  test('every llmesh command and flag it shows exists in the CLI', async () => {
    const cmds = await llmeshCommands()
    assert.ok(cmds.length >= 25, `only ${cmds.length} commands found`)
    const program = buildProgram()
    for (const line of cmds) {
      const words = line.split(/\s+/).slice(1)
      let cmd = program
      let i = 0
      for (; i < words.length; i++) {
        const sub = cmd.commands.find((c) => c.name() === words[i])
        if (sub === undefined) break
        cmd = sub
      }
      assert.notEqual(cmd, program, `${line}: no such command`)
      assert.equal(cmd.commands.length, 0, `${line}: ${cmd.name()} needs a subcommand`)
      for (const w of words.slice(i)) {
        if (!w.startsWith('--')) continue
        const flag = w.split('=')[0]
        assert.ok(
          cmd.options.some((o) => o.long === flag),
          `${line}: llmesh ${cmd.name()} has no option ${flag}`,
        )
      }
    }
  })

  test('the narrower canary policy it shows is a valid policy, narrower than the default', async () => {
    const text = await readFile(RUNBOOK, 'utf8')
    const yamls = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).filter((y) => y.startsWith('stages:'))
    assert.equal(yamls.length, 1)
    const policy = parsePolicyYaml(yamls[0], { filename: 'runbook.md' })
    const canary = policy.stages.find((s) => s.name === 'canary')
    assert.ok(canary !== undefined && canary.percent < 5, 'canary below the default 5 %')
    assert.equal(policy.gates.ooms?.max, 0)
  })
})
