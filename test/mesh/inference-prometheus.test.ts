/**
 * A real Prometheus (Debian `prometheus`, 1 s scrape interval, loopback only) scrapes a real device
 * daemon's /metrics (seed + 1 device, a release activated through the rollout controller).
 * Prometheus' HTTP API must return the llmesh request counters with the `model` and `model_version`
 * labels and exactly the count of requests this test made, their stage joined from
 * `llmesh_rollout_stage_info` on model_version (no request series carries `rollout_stage`);
 * `promtool check metrics` must accept the exposition with no lint finding. Skipped only when the binaries are
 * missing outside CI (under CI=true a missing binary fails).
 */

import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import OpenAI from 'openai'
import { POLICIES, scaled } from '../helpers/index.ts'
import { freePort } from '../helpers/ports.ts'
import { publish, type RolloutFleet, startRolloutFleet, waitAllServing, waitFor } from './rollout-helpers.ts'

const PROMETHEUS = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus'
const PROMTOOL = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool'
const missing = [PROMETHEUS, PROMTOOL].filter((p) => !existsSync(p))
const skip =
  missing.length > 0 && process.env.CI !== 'true' ? `missing ${missing.join(', ')} (apt install prometheus)` : false

/** Runs promtool check metrics on `text` (stdin); resolves with its exit code and output. */
function promtoolCheck(text: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(PROMTOOL, ['check', 'metrics'], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      resolve({ code, out: `${stdout}${stderr}` })
    })
    child.stdin?.end(text)
  })
}

interface PromVector {
  status: string
  data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> }
}

describe('a real Prometheus scrapes a device', { skip, timeout: scaled(120_000) }, () => {
  let f: RolloutFleet | undefined
  let prom: ChildProcess | undefined
  let promLog = ''
  let dir = ''
  let promUrl = ''
  const query = async (q: string): Promise<PromVector['data']['result']> => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`)
    const body = (await res.json()) as PromVector
    assert.equal(body.status, 'success', JSON.stringify(body))
    return body.data.result
  }

  before(async () => {
    assert.deepEqual(missing, [], `CI=true and the Prometheus binaries are missing: ${missing.join(', ')}`)
    dir = await mkdtemp(join(tmpdir(), 'llmesh-prom-'))
    f = await startRolloutFleet([[]])
    await publish(f, '1.0.0', POLICIES.ONE_STAGE)
    await waitAllServing(f, '1.0.0')
    const target = new URL(f.devices[0].daemon.apiUrl!).host
    const port = await freePort()
    promUrl = `http://127.0.0.1:${port}`
    const config = join(dir, 'prometheus.yml')
    await writeFile(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: llmesh',
        '    metrics_path: /metrics',
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    )
    prom = spawn(
      PROMETHEUS,
      [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    // never outlive this process, even when it dies before `after`
    const child = prom
    process.once('exit', () => child.kill('SIGKILL'))
    prom.stdout?.on('data', (c: Buffer) => {
      promLog += c
    })
    prom.stderr?.on('data', (c: Buffer) => {
      promLog += c
    })
    await waitFor(
      async () => {
        if (prom?.exitCode !== null) throw new Error(`prometheus exited: ${promLog}`)
        return (await fetch(`${promUrl}/-/ready`).catch(() => null))?.ok === true
      },
      30_000,
      'prometheus ready',
    )
    // Prometheus has scraped the device once before the requests
    await waitFor(async () => (await query('up{job="llmesh"}'))[0]?.value[1] === '1', 20_000, 'first scrape')
  })

  after(async () => {
    if (prom !== undefined && prom.exitCode === null && prom.signalCode === null) {
      const exited = new Promise((r) => prom!.once('exit', r))
      prom.kill('SIGTERM')
      const t = setTimeout(() => prom!.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    }
    await f?.stop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  test('request counts with model and model_version labels reach Prometheus, the stage joined on model_version', async () => {
    const api = f!.devices[0].daemon.apiUrl!
    const client = new OpenAI({ baseURL: `${api}/v1`, apiKey: 'none', maxRetries: 0 })
    const N = 5
    for (let i = 0; i < N - 2; i++)
      await client.completions.create({ model: 'tiny', prompt: `hello ${i}`, max_tokens: 4 })
    const s = await client.completions.create({ model: 'tiny', prompt: 'streamed', max_tokens: 4, stream: true })
    for await (const _ of s);
    await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 })
    // one refused request: counted as an error by kind, not as a served request
    await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 0 }))

    const sel = '{job="llmesh",model="tiny",model_version="1.0.0"}'
    let last = ''
    await waitFor(
      async () => {
        const r = await query(`sum(llmesh_inference_requests_total${sel})`)
        last = JSON.stringify(r)
        return r.length === 1 && Number(r[0].value[1]) === N
      },
      20_000,
      `Prometheus sees ${N} requests`,
    ).catch(async (err) => {
      const seen = JSON.stringify(await query('count by (__name__, model_version) ({job="llmesh", model_version!=""})'))
      throw new Error(`${(err as Error).message}; last answer ${last}; series ${seen}; log:\n${promLog.slice(-1500)}`)
    })
    const byMode = await query(`sum by (mode, outcome) (llmesh_inference_requests_total${sel})`)
    const counts = Object.fromEntries(byMode.map((x) => [`${x.metric.mode}/${x.metric.outcome}`, Number(x.value[1])]))
    assert.deepEqual(counts, { 'completion/ok': N - 1, 'chat/ok': 1 })
    const lat = await query(`llmesh_inference_request_duration_seconds_count${sel}`)
    assert.equal(
      lat.reduce((n, x) => n + Number(x.value[1]), 0),
      N,
    )
    // the stage of the requests' version: the info series, joined on (instance, model, model_version)
    const staged = await query(
      `sum by (rollout_stage) (llmesh_inference_requests_total${sel} * on (job, instance, model, model_version) group_left (rollout_stage) llmesh_rollout_stage_info)`,
    )
    assert.deepEqual(
      staged.map((x) => [x.metric.rollout_stage, Number(x.value[1])]),
      [['promoted', N]],
    )
    const tokensOut = await query(`llmesh_inference_tokens_out_total${sel}`)
    assert.ok(Number(tokensOut[0]?.value[1]) > 0, JSON.stringify(tokensOut))
    const errors = await query(`sum(llmesh_inference_errors_total{job="llmesh",model_version="1.0.0"})`)
    assert.equal(Number(errors[0]?.value[1]), 1)
    const loads = await query(`llmesh_inference_model_load_seconds_count{job="llmesh",model_version="1.0.0"}`)
    assert.ok(loads.length >= 1 && Number(loads[0].value[1]) >= 1, JSON.stringify(loads))
    const up = await query('up{job="llmesh"}')
    assert.equal(up[0]?.value[1], '1')
    for (const g of [
      'llmesh_host_cpu_percent',
      'llmesh_host_memory_used_percent',
      'llmesh_process_resident_memory_bytes',
    ]) {
      assert.equal((await query(g)).length, 1, `${g} scraped`)
    }
  })

  test('promtool check metrics accepts the exposition with no lint finding', async () => {
    const text = await (await fetch(`${f!.devices[0].daemon.apiUrl}/metrics`)).text()
    assert.match(text, /llmesh_inference_requests_total\{/)
    const { code, out } = await promtoolCheck(text)
    assert.equal(out.trim(), '', `promtool findings:\n${out}`)
    assert.equal(code, 0, out)
  })
})

describe('no rollout_stage on request metrics', { timeout: scaled(90_000) }, () => {
  let f: RolloutFleet | undefined
  after(async () => {
    await f?.stop()
  })

  test('no request series carries the stage; the info series names it for the served version', async () => {
    f = await startRolloutFleet([[]])
    await publish(f, '1.0.0', POLICIES.ONE_STAGE)
    await waitAllServing(f, '1.0.0')
    const api = f.devices[0].daemon.apiUrl!
    const res = await fetch(`${api}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'hello', max_tokens: 2 }),
    })
    assert.equal(res.status, 200)
    const text = await (await fetch(`${api}/metrics`)).text()
    const line = text.split('\n').find((l) => l.startsWith('llmesh_inference_requests_total{'))
    assert.match(line ?? '', /model="tiny",model_version="1\.0\.0",/, line)
    const staged = text.split('\n').filter((l) => /^llmesh_inference_\w+\{[^}]*rollout_stage=/.test(l))
    assert.deepEqual(staged, [], 'inference series with a rollout_stage label')
    assert.match(
      text,
      /^llmesh_rollout_stage_info\{model="tiny",model_version="1\.0\.0",rollout_stage="promoted"\} 1$/m,
    )
  })
})
