/**
 * No request, latency, token or fault series of a device carries `rollout_stage`: the label would
 * change value mid-rollout and start new series (a canary's requests split between `canary` and
 * `promoted`). The stage is `llmesh_rollout_stage_info{model, model_version, rollout_stage}` of the
 * rollout metrics, joined on model_version (tested in rollout-metrics.test.ts and, through a real
 * Prometheus, in test/mesh/inference-prometheus.test.ts).
 * Every event the inference metrics follow is driven through a stand-in supervisor (an
 * EventEmitter with status(): pure bookkeeping, no worker), then every sample is checked.
 */
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { test } from 'node:test'
import type { InferenceSupervisor } from '../../node/inference/inference-supervisor.ts'
import { createInferenceMetrics } from '../../node/inference/metrics.ts'
import type { RequestRecord } from '../../node/inference/types.ts'

const req = (outcome: 'ok' | 'error' = 'ok'): RequestRecord => ({
  at: 1,
  mode: 'completion',
  outcome,
  ...(outcome === 'error' ? { errorCode: 'ERR_INFERENCE_TIMEOUT' } : {}),
  durationMs: 12,
  ttftMs: 3,
  queuedMs: 0,
  tokensIn: 3,
  tokensOut: 2,
})

class FakeSupervisor extends EventEmitter {
  state = 'ready'
  status() {
    return { active: 1, waiting: 2, workerRssBytes: 1000, oomDetection: 'cgroup' }
  }
}

test('no series of the inference metrics carries rollout_stage, whatever the events', async () => {
  const m = createInferenceMetrics({ labels: { model: 'tiny', modelVersion: '1.0.0' } })
  const sup = new FakeSupervisor()
  const unbind = m.bindSupervisor(sup as unknown as InferenceSupervisor)
  sup.emit('model-loaded', { at: 1, model: { name: 'tiny', version: '1.1.0', loadMs: 40 } })
  sup.emit('request', req())
  sup.emit('request', req('error'))
  sup.emit('restart', { at: 1, reason: 'crash' })
  sup.emit('oom', { at: 1 })
  sup.emit('load-failure', { at: 1, reason: 'oom' })
  sup.emit('probe-failure', { at: 1 })
  sup.emit('timeout', { at: 1, what: 'request' })
  m.recordError('bad_request')
  const text = await m.registry.metrics()
  unbind()
  const samples = text.split('\n').filter((l) => l.startsWith('llmesh_'))
  // every family the events feed has a sample with the served version, so the check below bites
  for (const name of [
    'llmesh_inference_requests_total',
    'llmesh_inference_errors_total',
    'llmesh_inference_request_duration_seconds_bucket',
    'llmesh_inference_time_to_first_token_seconds_count',
    'llmesh_inference_tokens_in_total',
    'llmesh_inference_tokens_out_total',
    'llmesh_inference_restarts_total',
    'llmesh_inference_oom_total',
    'llmesh_inference_load_failures_total',
    'llmesh_inference_probe_failures_total',
    'llmesh_inference_timeouts_total',
    'llmesh_inference_model_load_seconds_count',
    'llmesh_inference_concurrency',
    'llmesh_inference_queue_length',
  ]) {
    assert.ok(
      samples.some((l) => l.startsWith(`${name}{`) && l.includes('model="tiny",model_version="1.1.0"')),
      `${name} has a sample for tiny@1.1.0`,
    )
  }
  const staged = samples.filter((l) => l.includes('rollout_stage'))
  assert.deepEqual(staged, [], 'samples with a rollout_stage label')
  for (const metric of m.registry.getMetricsAsArray()) {
    const labels = (metric as unknown as { labelNames?: string[] }).labelNames ?? []
    assert.ok(!labels.includes('rollout_stage'), `${metric.name} declares rollout_stage`)
  }
})
