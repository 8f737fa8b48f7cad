/**
 * The rollout_stage label of request metrics: with a stage resolver, each sample carries the stage
 * of the served version at the time it was recorded, whatever a scrape last set; without one, the
 * label set by setLabels() applies.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createInferenceMetrics } from '../../node/inference/metrics.ts'
import type { RequestRecord } from '../../node/inference/types.ts'

const req = (): RequestRecord =>
  ({
    at: 1,
    mode: 'completion',
    outcome: 'ok',
    durationMs: 12,
    queuedMs: 0,
    tokensIn: 3,
    tokensOut: 2,
  }) as RequestRecord

const requestsLine = async (m: ReturnType<typeof createInferenceMetrics>, stage: string) =>
  (await m.registry.metrics())
    .split('\n')
    .find((l) => l.startsWith('llmesh_inference_requests_total{') && l.includes(`rollout_stage="${stage}"`))

test('without a resolver the stage is the one setLabels() set', async () => {
  const m = createInferenceMetrics({ labels: { model: 'tiny', modelVersion: '1' } })
  m.observeRequest(req())
  m.setLabels({ rolloutStage: 'canary' })
  m.observeRequest(req())
  assert.match((await requestsLine(m, 'none')) ?? '', / 1$/)
  assert.match((await requestsLine(m, 'canary')) ?? '', / 1$/)
})

test('with a resolver each request carries the stage of its version when it finished', async () => {
  let stage: string | undefined
  const asked: string[] = []
  const m = createInferenceMetrics({ labels: { model: 'tiny', modelVersion: '2.0.0', rolloutStage: 'stale' } })
  m.setStageResolver((model, version) => {
    asked.push(`${model}@${version}`)
    return stage
  })
  m.observeRequest(req())
  stage = 'pilot'
  m.observeRequest(req())
  m.observeRequest(req())
  stage = 'promoted'
  m.observeRequest(req())
  m.setStageResolver(() => {
    throw new Error('controller stopped')
  })
  m.observeRequest(req())
  assert.match((await requestsLine(m, 'none')) ?? '', / 1$/)
  assert.match((await requestsLine(m, 'pilot')) ?? '', / 2$/)
  assert.match((await requestsLine(m, 'promoted')) ?? '', / 1$/)
  // a failing resolver keeps the sample, with the last label set
  assert.match((await requestsLine(m, 'stale')) ?? '', / 1$/)
  assert.ok(asked.every((a) => a === 'tiny@2.0.0'))
  assert.equal((await m.registry.metrics()).includes('rollout_stage="stale"'), true)
})
