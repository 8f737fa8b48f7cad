/**
 * Host figures for health reports: CPU % since the previous sample (from `os.cpus()` times),
 * RAM %, and the hottest thermal zone when `/sys/class/thermal` has one.
 */
import { readdir, readFile } from 'node:fs/promises'
import { cpus, freemem, totalmem } from 'node:os'
import { join } from 'node:path'
import { THERMAL_DIR } from './constants.ts'

/** One hardware sample. */
export interface HardwareSample {
  cpu_pct: number
  ram_pct: number
  ram_total_mb: number
  temp_c?: number
}

function cpuTimes(): { idle: number; total: number } {
  let idle = 0
  let total = 0
  for (const c of cpus()) {
    const t = c.times
    idle += t.idle
    total += t.user + t.nice + t.sys + t.idle + t.irq
  }
  return { idle, total }
}

const clampPct = (x: number): number => Math.min(100, Math.max(0, Math.round(x * 10) / 10))

/** Reads the hottest thermal zone (°C), or undefined. */
export async function readTemperature(dir = THERMAL_DIR): Promise<number | undefined> {
  let zones: string[]
  try {
    zones = (await readdir(dir)).filter((z) => z.startsWith('thermal_zone'))
  } catch {
    return undefined
  }
  let best: number | undefined
  for (const z of zones) {
    try {
      const milli = Number((await readFile(join(dir, z, 'temp'), 'utf8')).trim())
      if (Number.isFinite(milli) && (best === undefined || milli / 1000 > best)) best = milli / 1000
    } catch {}
  }
  return best
}

/** Samples CPU % over the time since the previous call of the same sampler. */
export class HardwareSampler {
  private last = cpuTimes()
  private readonly thermalDir: string

  constructor(thermalDir = THERMAL_DIR) {
    this.thermalDir = thermalDir
  }

  async sample(): Promise<HardwareSample> {
    const now = cpuTimes()
    const dTotal = now.total - this.last.total
    const dIdle = now.idle - this.last.idle
    this.last = now
    const total = totalmem()
    const out: HardwareSample = {
      cpu_pct: dTotal > 0 ? clampPct(100 * (1 - dIdle / dTotal)) : 0,
      ram_pct: clampPct(100 * (1 - freemem() / total)),
      ram_total_mb: Math.floor(total / 1048576),
    }
    const t = await readTemperature(this.thermalDir)
    if (t !== undefined) out.temp_c = t
    return out
  }
}
