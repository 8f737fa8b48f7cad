/**
 * The Prometheus alerting rules in docs/alerts/llmesh.rules.yml, with promtool:
 * - `promtool check rules` accepts them;
 * - `promtool test rules test/fixtures/alert-rules.test.yml` passes: each alert fires on its bad
 *   synthetic series and stays silent on the healthy ones (the fixture lists every expected alert);
 * - the fixture really catches broken rules: each mutation below (a threshold, a selector, a
 *   metric name, the handling of counters born at their first increment) must make it fail.
 * The rules against the metrics a device exposes and the runbook: alert-rules-metrics.test.ts;
 * the runbook's commands: runbook.test.ts.
 * promtool comes from Debian's `prometheus` (.ci/run installs it): without it the promtool tests
 * are skipped with a reason, except under CI=true, where they fail.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { parse, stringify } from 'yaml'
import { scaled, suiteTmpDir } from '../helpers/index.ts'
import { loadRules, ROOT, RULES } from './alert-rules-helpers.ts'

const FIXTURE = join(ROOT, 'test/fixtures/alert-rules.test.yml')
/** The day-over-day rules' tests: more than a day of series, evaluated every 5 minutes. */
const DAILY_FIXTURE = join(ROOT, 'test/fixtures/alert-rules-daily.test.yml')
const FIXTURES = [FIXTURE, DAILY_FIXTURE]
const PROMTOOL = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool'
const hasPromtool = existsSync(PROMTOOL)
const skip = !hasPromtool && process.env.CI !== 'true' ? `missing ${PROMTOOL} (apt install prometheus)` : false

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
  ['LlmeshMdnsFlood', 'for: 15m', 'for: 1m'],
  ['LlmeshMdnsFlood', '{outcome="limited"}', ''],
  ['LlmeshMdnsFlood', 'limited"}[5m]', 'limited"}[30m]'],
  ['LlmeshMdnsFlood', 'group_left (peer_id)', 'group_left ()'],
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
