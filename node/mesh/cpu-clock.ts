/**
 * The CPU clock that per-peer budgets charge (gossip-budget.ts, anti-entropy-guard.ts): the CPU
 * time of this thread only. `process.cpuUsage()` counts every thread of the process, so on a busy
 * node a peer was also charged for what the GC helpers, libuv's pool and RocksDB did meanwhile:
 * under load an honest peer could pass its CPU budget, lose score and be banned.
 */

/** A reading of this thread's CPU time. */
export type CpuReading = NodeJS.CpuUsage

/** Reads this thread's CPU time now. */
export function cpuNow(): CpuReading {
  return process.threadCpuUsage()
}

/** Milliseconds of this thread's CPU time since `since`. */
export function cpuMsSince(since: CpuReading): number {
  const d = process.threadCpuUsage(since)
  return (d.user + d.system) / 1000
}
