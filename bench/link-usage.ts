/**
 * How busy each host's link was during a fan-out (bench/fanout.ts), read from the kernel's byte
 * counters on the bridge side of every host's veth (`ip -s -j link` in the bed's bridge namespace;
 * v<i> receives what host i uploads and sends what it downloads). Sampled every `periodMs` (one
 * `ip` process each time, nothing in the daemons' namespaces), so the figures say where a swarm
 * loses against the Kumar–Ross bound: the seed's uplink idle, the devices' uplinks idle (nothing
 * asked of them), or the devices' downlinks short of the link rate.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { TestBed } from '../test/lan/netns.ts'

const execFileP = promisify(execFile)
const sec = (ms: number) => (ms / 1000).toFixed(2)

/** One reading: ms since the sampler started, and per host index its bytes up and down so far. */
export interface LinkSample {
  at: number
  up: number[]
  down: number[]
}

/**
 * Samples every host's link counters until `stop()`. The wait between readings is cancelled by
 * `stop()` and does not keep the process alive, so a bench that fails before stopping it still exits.
 */
export class LinkSampler {
  readonly samples: LinkSample[] = []
  private running = true
  private wake: (() => void) | null = null
  private readonly loop: Promise<void>
  private readonly bed: TestBed
  private readonly hosts: number
  private readonly t0: number

  constructor(bed: TestBed, hosts: number, t0: number, periodMs = 500) {
    this.bed = bed
    this.hosts = hosts
    this.t0 = t0
    this.loop = (async () => {
      while (this.running) {
        await this.read()
        await new Promise<void>((resolve) => {
          this.wake = resolve
          setTimeout(resolve, periodMs).unref()
        })
      }
    })()
  }

  /** Stops sampling and takes one last reading; returns every reading. */
  async stop(): Promise<LinkSample[]> {
    this.running = false
    this.wake?.()
    await this.loop
    await this.read()
    return this.samples
  }

  private async read(): Promise<void> {
    const s = await readLinks(this.bed, this.hosts, this.t0).catch(() => null)
    if (s !== null) this.samples.push(s)
  }
}

async function readLinks(bed: TestBed, hosts: number, t0: number): Promise<LinkSample> {
  const { stdout } = await execFileP('ip', ['-n', bed.bridgeNs, '-s', '-j', 'link', 'show'])
  const at = Date.now() - t0
  const links = JSON.parse(stdout) as Array<{
    ifname: string
    stats64?: { rx: { bytes: number }; tx: { bytes: number } }
  }>
  const up = new Array<number>(hosts).fill(0)
  const down = new Array<number>(hosts).fill(0)
  for (const l of links) {
    const i = /^v(\d+)$/.exec(l.ifname)?.[1]
    if (i === undefined || Number(i) >= hosts || l.stats64 === undefined) continue
    up[Number(i)] = l.stats64.rx.bytes
    down[Number(i)] = l.stats64.tx.bytes
  }
  return { at, up, down }
}

/**
 * What host `i` moved `dir` between `from` and `to` ms, in bits/s, measured between the last sample
 * at or before `from` and the first at or after `to` (NaN if they are the same sample).
 */
export function rate(samples: readonly LinkSample[], i: number, dir: 'up' | 'down', from: number, to: number): number {
  const a = samples.findLast((s) => s.at <= from) ?? samples[0]
  const b = samples.find((s) => s.at >= to) ?? samples.at(-1)
  if (a === undefined || b === undefined || b.at <= a.at) return Number.NaN
  return ((b[dir][i] - a[dir][i]) * 8 * 1000) / (b.at - a.at)
}

/** When host `i` first / last moved bytes `dir` beyond `floor` per sample period (ms), or NaN. */
export function activeSpan(
  samples: readonly LinkSample[],
  i: number,
  dir: 'up' | 'down',
  floor: number,
): [number, number] {
  let first = Number.NaN
  let last = Number.NaN
  for (let k = 1; k < samples.length; k++) {
    if (samples[k][dir][i] - samples[k - 1][dir][i] <= floor) continue
    if (Number.isNaN(first)) first = samples[k - 1].at
    last = samples[k].at
  }
  return [first, last]
}

/**
 * How busy the links were (wire bytes against the nominal rate, so TCP/IP headers count): the seed's
 * uplink from its first to its last busy half second; the devices' downlinks and uplinks (means)
 * from the first device's fetch to the last device's 100 % (`tl`: ms since the sampler's start; host
 * 0 is the seed, host k the k-th device); and per second, in Mbit/s.
 */
export function linkReport(
  mode: string,
  ls: readonly LinkSample[],
  tl: ReadonlyArray<{ fetch: number; p100: number }>,
  rateMbit: number,
): string {
  const link = rateMbit * 1e6
  const pct = (x: number) => `${((100 * x) / link).toFixed(0)} %`
  const [s0, s1] = activeSpan(ls, 0, 'up', 20_000)
  const from = Math.min(...tl.map((t) => t.fetch).filter((x) => !Number.isNaN(x)))
  const to = Math.max(...tl.map((t) => t.p100).filter((x) => !Number.isNaN(x)))
  const devices = Array.from({ length: tl.length }, (_, k) => k + 1)
  const mean = (dir: 'up' | 'down', a: number, b: number) =>
    devices.reduce((acc, i) => acc + rate(ls, i, dir, a, b), 0) / devices.length
  const series: string[] = []
  for (let t = 0; t + 1000 <= (ls.at(-1)?.at ?? 0); t += 1000) {
    const mb = (x: number) => (x / 1e6).toFixed(1)
    series.push(
      `${t / 1000}:${mb(rate(ls, 0, 'up', t, t + 1000))}/${mb(mean('down', t, t + 1000))}/${mb(mean('up', t, t + 1000))}`,
    )
  }
  return (
    `# ${mode} links (wire bytes / nominal ${rateMbit} Mbit/s): seed uplink ${pct(rate(ls, 0, 'up', s0, s1))} busy ${sec(s0)}–${sec(s1)} s; ` +
    `devices ${sec(from)}–${sec(to)} s: downlinks ${pct(mean('down', from, to))}, uplinks ${pct(mean('up', from, to))} (means)\n` +
    `# ${mode} links per second, s:seed up/devices down/devices up (Mbit/s): ${series.join(' ')}`
  )
}
