/**
 * What /metrics must expose (issue 5): requests, errors by kind, a latency histogram, time to
 * first token, tokens in and out, concurrency and queue length, restarts, OOMs, load failures and
 * model load time, each with `model` and `model_version` (no stage label); process and host gauges
 * (CPU %, RAM %), and the temperature of the hottest thermal zone only where one exists.
 */
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { createInferenceMetrics, maxTemperature } from '../../node/inference/metrics.ts'
import type { RequestRecord } from '../../node/inference/types.ts'
import { tmpDir } from '../helpers/index.ts'

const req = (over: Partial<RequestRecord> = {}): RequestRecord =>
  ({
    at: 1,
    mode: 'chat',
    outcome: 'ok',
    durationMs: 300,
    queuedMs: 5,
    ttftMs: 40,
    tokensIn: 7,
    tokensOut: 11,
    ...over,
  }) as RequestRecord

/** Samples of `name` as [labels, value]. */
function samples(text: string, name: string): Array<[string, number]> {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .map((l) => [l.slice(name.length, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))])
}

test('every metric of the spec, with model and model_version', async (t) => {
  const dir = await tmpDir(t, 'llmesh-metrics-')
  const m = createInferenceMetrics({
    labels: { model: 'tiny', modelVersion: '2.0.0' },
    thermalDir: join(dir, 'none'),
  })
  m.observeRequest(req())
  m.observeRequest(req({ mode: 'completion', durationMs: 2000, ttftMs: 900 }))
  m.observeRequest(req({ outcome: 'error', errorCode: 'ERR_INFERENCE_TIMEOUT', tokensOut: 0, ttftMs: undefined }))
  m.recordError('bad_request')
  const text = await m.registry.metrics()
  const labels = 'model="tiny",model_version="2.0.0"'
  assert.deepEqual(
    samples(text, 'llmesh_inference_requests_total').map(([, v]) => v),
    [1, 1, 1],
  )
  assert.ok(samples(text, 'llmesh_inference_requests_total').every(([l]) => l.includes(labels)))
  const errs = Object.fromEntries(
    samples(text, 'llmesh_inference_errors_total').map(([l, v]) => [/kind="([^"]+)"/.exec(l)![1], v]),
  )
  assert.deepEqual(errs, { timeout: 1, bad_request: 1 })
  const sum = (name: string) => {
    const xs = samples(text, name)
    for (const [l] of xs) assert.ok(l.includes(labels), l)
    return xs.reduce((n, [, v]) => n + v, 0)
  }
  assert.equal(sum('llmesh_inference_request_duration_seconds_count'), 3)
  assert.ok(Math.abs(sum('llmesh_inference_request_duration_seconds_sum') - 2.6) < 1e-9)
  // the 2 s request is above the 1 s bucket, the 0.3 s ones are in it
  const le1 = samples(text, 'llmesh_inference_request_duration_seconds_bucket').filter(([l]) => l.includes('le="1"'))
  assert.equal(
    le1.reduce((n, [, v]) => n + v, 0),
    2,
  )
  assert.equal(sum('llmesh_inference_time_to_first_token_seconds_count'), 2)
  assert.equal(sum('llmesh_inference_tokens_in_total'), 21)
  assert.equal(sum('llmesh_inference_tokens_out_total'), 22)
  for (const name of [
    'llmesh_inference_restarts_total',
    'llmesh_inference_oom_total',
    'llmesh_inference_load_failures_total',
    'llmesh_inference_model_load_seconds',
    'llmesh_inference_concurrency',
    'llmesh_inference_queue_length',
    'llmesh_process_cpu_percent',
    'llmesh_host_cpu_percent',
    'llmesh_host_memory_used_percent',
    'llmesh_process_resident_memory_bytes',
  ]) {
    assert.match(text, new RegExp(`# TYPE ${name} `), name)
  }
  for (const name of ['llmesh_host_cpu_percent', 'llmesh_host_memory_used_percent', 'llmesh_process_cpu_percent']) {
    const [[, v]] = samples(text, name)
    assert.ok(v >= 0 && v <= 100, `${name} ${v}`)
  }
  // no thermal zones: the gauge has no sample at all (not a made-up 0)
  assert.deepEqual(samples(text, 'llmesh_host_temperature_celsius'), [])
  // no worker: no RSS sample either
  assert.deepEqual(samples(text, 'llmesh_inference_worker_resident_memory_bytes'), [])
})

test('temperature: the hottest readable thermal zone, in °C', async (t) => {
  const dir = await tmpDir(t, 'llmesh-metrics-')
  const thermal = join(dir, 'thermal')
  for (const [zone, milli] of [
    ['thermal_zone0', '41500'],
    ['thermal_zone1', '67250'],
    ['thermal_zone2', 'garbage'],
    ['cooling_device0', '99000'],
  ]) {
    await mkdir(join(thermal, zone), { recursive: true })
    await writeFile(join(thermal, zone, 'temp'), `${milli}\n`)
  }
  await mkdir(join(thermal, 'thermal_zone3'), { recursive: true }) // no temp file
  assert.equal(await maxTemperature(thermal), 67.25)
  assert.equal(await maxTemperature(join(dir, 'missing')), undefined)
  const m = createInferenceMetrics({ thermalDir: thermal })
  assert.deepEqual(samples(await m.registry.metrics(), 'llmesh_host_temperature_celsius'), [['', 67.25]])
})
