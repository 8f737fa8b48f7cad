/**
 * Prometheus metrics of the inference service, on their OWN registry (`metrics.registry`; the HTTP
 * server serves it at /metrics). Request metrics carry the labels `model` and `model_version`
 * (set with setLabels(); they follow model loads automatically). No `rollout_stage`: a stage
 * label would change value mid-rollout and start new series; the stage is the info series
 * `llmesh_rollout_stage_info` (node/rollout/metrics.ts), joined on `model_version`.
 * Only numbers and identifiers go in: never prompt or completion text.
 */
import { readdir, readFile } from 'node:fs/promises'
import { cpus, freemem, totalmem } from 'node:os'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { InferenceSupervisor } from './inference-supervisor.ts'
import type { RequestRecord } from './types.ts'

/** Current label values. */
export interface ModelLabels {
  model: string
  modelVersion: string
}

/** Options of the metrics. */
export interface InferenceMetricsInit {
  /** Metric name prefix. Default 'llmesh_'. */
  prefix?: string
  /** Initial label values (default 'none'). */
  labels?: Partial<ModelLabels>
  /** Thermal zones directory. Default /sys/class/thermal. */
  thermalDir?: string
}

/** The labels of every model series (request, latency, token, fault counters). */
export const MODEL_LABELS = ['model', 'model_version'] as const
const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]
const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** Maps a supervisor error code to a short error kind label. */
export function errorKind(code: string | undefined): string {
  switch (code) {
    case 'ERR_OVERLOADED':
      return 'overloaded'
    case 'ERR_MODEL_UNAVAILABLE':
      return 'unavailable'
    case 'ERR_INFERENCE_TIMEOUT':
      return 'timeout'
    case 'ERR_WORKER_CRASHED':
      return 'crash'
    case 'ERR_ABORTED':
      return 'aborted'
    case 'ERR_GENERATION':
      return 'generation'
    default:
      return code === undefined ? 'unknown' : code.toLowerCase().replace(/^err_/, '')
  }
}

/** Inference metrics on a private registry. */
export class InferenceMetrics {
  readonly registry = new Registry()
  private labels: ModelLabels
  private readonly thermalDir: string
  private supervisor: InferenceSupervisor | undefined
  private readonly requests: Counter<string>
  private readonly errors: Counter<string>
  private readonly latency: Histogram<string>
  private readonly ttft: Histogram<string>
  private readonly tokensIn: Counter<string>
  private readonly tokensOut: Counter<string>
  private readonly restarts: Counter<string>
  private readonly ooms: Counter<string>
  private readonly loadFailures: Counter<string>
  private readonly probeFailures: Counter<string>
  private readonly timeouts: Counter<string>
  private readonly loadTime: Histogram<string>
  private lastCpu = { at: performance.now(), usage: process.cpuUsage(), host: hostCpuTimes() }

  constructor(init: InferenceMetricsInit = {}) {
    const p = init.prefix ?? 'llmesh_'
    this.thermalDir = init.thermalDir ?? '/sys/class/thermal'
    this.labels = { model: 'none', modelVersion: 'none', ...init.labels }
    const registers = [this.registry]
    const labelNames = [...MODEL_LABELS]
    const counter = (name: string, help: string, extra: string[] = []): Counter<string> =>
      new Counter({ name: p + name, help, labelNames: [...labelNames, ...extra], registers })
    this.requests = counter('inference_requests_total', 'Inference requests finished', ['mode', 'outcome'])
    this.errors = counter('inference_errors_total', 'Inference errors by kind', ['kind'])
    this.tokensIn = counter('inference_tokens_in_total', 'Prompt tokens evaluated')
    this.tokensOut = counter('inference_tokens_out_total', 'Tokens generated')
    this.restarts = counter('inference_restarts_total', 'Worker restarts after an unexpected exit', ['reason'])
    this.ooms = counter('inference_oom_total', 'Out-of-memory incidents (worker OOM-killed or load refused for memory)')
    this.loadFailures = counter('inference_load_failures_total', 'Model load failures', ['reason'])
    this.probeFailures = counter('inference_probe_failures_total', 'Failed post-load probes')
    this.timeouts = counter('inference_timeouts_total', 'Timeouts (request, load, health, …)', ['what'])
    this.latency = new Histogram({
      name: `${p}inference_request_duration_seconds`,
      help: 'Request latency from admission to last token',
      labelNames: [...labelNames, 'mode'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.ttft = new Histogram({
      name: `${p}inference_time_to_first_token_seconds`,
      help: 'Time from admission to the first generated text',
      labelNames: [...labelNames, 'mode'],
      buckets: TTFT_BUCKETS,
      registers,
    })
    this.loadTime = new Histogram({
      name: `${p}inference_model_load_seconds`,
      help: 'Model load time in the worker',
      labelNames,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    })
    const gauge = (name: string, help: string, collect: (g: Gauge<string>) => void | Promise<void>, model = false) =>
      new Gauge({
        name: p + name,
        help,
        labelNames: model ? labelNames : [],
        registers,
        async collect() {
          this.reset()
          await collect(this)
        },
      })
    gauge(
      'inference_concurrency',
      'Requests running on the worker',
      (g) => this.setModelGauge(g, (s) => s.active),
      true,
    )
    gauge('inference_queue_length', 'Requests waiting for a slot', (g) => this.setModelGauge(g, (s) => s.waiting), true)
    gauge('inference_ready', '1 when a model is being served', (g) => g.set(this.supervisor?.state === 'ready' ? 1 : 0))
    gauge('inference_worker_resident_memory_bytes', 'RSS of the inference worker process', (g) => {
      const rss = this.supervisor?.status().workerRssBytes
      // a label-less gauge reads 0 after reset(): no worker means no sample, not 0 bytes
      if (rss === undefined) g.remove()
      else g.set(rss)
    })
    const oomMethod = () => this.supervisor?.status().oomDetection
    new Gauge({
      name: `${p}inference_oom_detection`,
      help: 'How OOM kills of the inference worker are told from other SIGKILLs (1 on the method in use)',
      labelNames: ['method'],
      registers,
      collect: function (this: Gauge<string>) {
        this.reset()
        const method = oomMethod()
        if (method !== undefined) this.set({ method }, 1)
      },
    })
    gauge('process_cpu_percent', 'CPU used by this process, percent of all cores', (g) => g.set(this.cpu().process))
    gauge('host_cpu_percent', 'CPU used on the host, percent of all cores', (g) => g.set(this.cpu().host))
    gauge('host_memory_used_percent', 'RAM in use on the host, percent', (g) =>
      g.set(((totalmem() - freemem()) / totalmem()) * 100),
    )
    gauge('process_resident_memory_bytes', 'RSS of this process', (g) => g.set(process.memoryUsage.rss()))
    gauge('host_temperature_celsius', 'Hottest thermal zone (absent without /sys/class/thermal)', async (g) => {
      const t = await maxTemperature(this.thermalDir)
      // without a thermal zone, no sample (prom-client would otherwise expose a made-up 0 °C)
      if (t === undefined) g.remove()
      else g.set(t)
    })
  }

  /** Changes the label values used from now on. */
  setLabels(labels: Partial<ModelLabels>): void {
    this.labels = { ...this.labels, ...labels }
  }

  private lv(): Record<(typeof MODEL_LABELS)[number], string> {
    return { model: this.labels.model, model_version: this.labels.modelVersion }
  }

  private setModelGauge(g: Gauge<string>, pick: (s: { active: number; waiting: number }) => number): void {
    if (this.supervisor !== undefined) g.set(this.lv(), pick(this.supervisor.status()))
  }

  /** Counts one finished request (called for supervisor `request` events). */
  observeRequest(r: RequestRecord): void {
    const lv = this.lv()
    this.requests.inc({ ...lv, mode: r.mode, outcome: r.outcome })
    if (r.outcome === 'error') this.errors.inc({ ...lv, kind: errorKind(r.errorCode) })
    this.latency.observe({ ...lv, mode: r.mode }, r.durationMs / 1000)
    if (r.ttftMs !== undefined) this.ttft.observe({ ...lv, mode: r.mode }, r.ttftMs / 1000)
    if (r.tokensIn > 0) this.tokensIn.inc(lv, r.tokensIn)
    if (r.tokensOut > 0) this.tokensOut.inc(lv, r.tokensOut)
  }

  /** Counts an error that never reached the supervisor (bad request, auth…). */
  recordError(kind: string): void {
    this.errors.inc({ ...this.lv(), kind })
  }

  /** Follows the supervisor's events and state. Returns a function that unbinds. */
  bindSupervisor(sup: InferenceSupervisor): () => void {
    this.supervisor = sup
    const handlers = {
      request: (r: RequestRecord) => this.observeRequest(r),
      restart: (e: { reason: string }) => this.restarts.inc({ ...this.lv(), reason: e.reason }),
      oom: () => this.ooms.inc(this.lv()),
      'load-failure': (e: { reason: string }) => this.loadFailures.inc({ ...this.lv(), reason: e.reason }),
      'probe-failure': () => this.probeFailures.inc(this.lv()),
      timeout: (e: { what: string }) => this.timeouts.inc({ ...this.lv(), what: e.what }),
      'model-loaded': (e: { model: { name: string; version: string | undefined; loadMs: number } }) => {
        this.setLabels({ model: e.model.name, modelVersion: e.model.version ?? 'none' })
        this.loadTime.observe(this.lv(), e.model.loadMs / 1000)
      },
    }
    for (const [name, fn] of Object.entries(handlers)) sup.on(name as never, fn as never)
    return () => {
      for (const [name, fn] of Object.entries(handlers)) sup.off(name as never, fn as never)
      if (this.supervisor === sup) this.supervisor = undefined
    }
  }

  /** CPU percentages since the previous scrape (both metrics share one measurement window). */
  private cpuCache: { at: number; process: number; host: number } | undefined
  private cpu(): { process: number; host: number } {
    const at = performance.now()
    if (this.cpuCache !== undefined && at - this.cpuCache.at < 100) return this.cpuCache
    const usage = process.cpuUsage()
    const host = hostCpuTimes()
    const wallUs = (at - this.lastCpu.at) * 1000
    const cores = Math.max(1, cpus().length)
    const used = usage.user - this.lastCpu.usage.user + (usage.system - this.lastCpu.usage.system)
    const proc = wallUs > 0 ? Math.min(100, (used / (wallUs * cores)) * 100) : 0
    const total = host.total - this.lastCpu.host.total
    const hostPct = total > 0 ? (1 - (host.idle - this.lastCpu.host.idle) / total) * 100 : 0
    this.lastCpu = { at, usage, host }
    this.cpuCache = { at, process: proc, host: hostPct }
    return this.cpuCache
  }
}

function hostCpuTimes(): { idle: number; total: number } {
  let idle = 0
  let total = 0
  for (const c of cpus()) {
    idle += c.times.idle
    total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq
  }
  return { idle, total }
}

/** Highest temperature (°C) over thermal zones, or undefined when there are none. */
export async function maxTemperature(dir: string): Promise<number | undefined> {
  let zones: string[]
  try {
    zones = (await readdir(dir)).filter((z) => z.startsWith('thermal_zone'))
  } catch {
    return undefined
  }
  let max: number | undefined
  for (const z of zones) {
    try {
      const milli = Number((await readFile(`${dir}/${z}/temp`, 'utf8')).trim())
      if (Number.isFinite(milli)) max = Math.max(max ?? -Infinity, milli / 1000)
    } catch {
      // zone without a readable temp
    }
  }
  return max
}

/** Creates the inference metrics. */
export function createInferenceMetrics(init: InferenceMetricsInit = {}): InferenceMetrics {
  return new InferenceMetrics(init)
}
