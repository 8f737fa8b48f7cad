/**
 * The alerting rules in docs/alerts/llmesh.rules.yml against what a device really exposes:
 * - every metric and label the rules use exists in node/inference/metrics.ts, node/rollout/metrics.ts
 *   and the other metric modules of a device (each built on its own registry), so renaming a metric or a label breaks this test,
 *   not the on-call's night;
 * - every alert has a severity and a runbook_url whose anchor is a heading of docs/runbook.md.
 * (promtool's checks of the rules: alert-rules.test.ts.)
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, test } from 'node:test'
import { Histogram, Registry } from 'prom-client'
import { registerAgentMetrics } from '../../node/agent-update/metrics.ts'
import { InferenceMetrics } from '../../node/inference/metrics.ts'
import { createMeshMetrics } from '../../node/mesh/mesh-metrics.ts'
import { storeHealth } from '../../node/mesh/store-load.ts'
import { createStoreMetrics } from '../../node/mesh/store-metrics.ts'
import { RolloutMetrics } from '../../node/rollout/metrics.ts'
import { createReplicationMetrics } from '../../node/store/replication-metrics.ts'
import { loadRules, RUNBOOK } from './alert-rules-helpers.ts'

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
