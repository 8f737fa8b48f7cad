/**
 * The quality prober's Prometheus metrics, on a registry of their own: probes by outcome, complete
 * passes, and the figures of each complete pass (agreement, perplexity) per model version and
 * probe set (its digest's first 12 hex characters). Read at scrape time; the prober keeps no
 * metric state of its own.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import { qualityOf } from '../../protocols/rollout/quality-gate.ts'
import type { QualityProber } from './prober.ts'

/** Builds the registry for one prober. */
export function createQualityMetrics(
  prober: Pick<QualityProber, 'counters' | 'figures'>,
  prefix = 'llmesh_',
): Registry {
  const registry = new Registry()
  const registers = [registry]
  new Counter({
    name: `${prefix}quality_probes_total`,
    help: 'Quality probes by outcome (scored; preempted by a request; error)',
    labelNames: ['outcome'],
    registers,
    collect() {
      this.reset()
      const c = prober.counters
      this.inc({ outcome: 'scored' }, c.probes)
      this.inc({ outcome: 'preempted' }, c.preempted)
      this.inc({ outcome: 'error' }, c.errors)
    },
  })
  new Counter({
    name: `${prefix}quality_passes_total`,
    help: 'Complete passes of a probe set on a served version',
    registers,
    collect() {
      this.reset()
      this.inc(prober.counters.passes)
    },
  })
  const figure = (name: string, help: string, pick: (q: ReturnType<typeof qualityOf>) => number | null) =>
    new Gauge({
      name: `${prefix}${name}`,
      help,
      labelNames: ['model', 'model_version', 'probe_set'],
      registers,
      collect() {
        this.reset()
        for (const f of prober.figures()) {
          const v = pick(qualityOf(f))
          if (v !== null) this.set({ model: f.model, model_version: f.version, probe_set: f.probe_set.slice(0, 12) }, v)
        }
      },
    })
  figure(
    'quality_agreement',
    'Share of reference tokens that were the model’s greedy next token (last complete pass)',
    (q) => q.agreement,
  )
  figure(
    'quality_perplexity',
    'Perplexity of the reference outputs under the model (last complete pass)',
    (q) => q.perplexity,
  )
  return registry
}
