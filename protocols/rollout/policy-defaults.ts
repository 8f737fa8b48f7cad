import type { RolloutPolicy } from '../schemas/policy.ts'

/**
 * The policy a release gets when the operator gives none. Equivalent YAML:
 *
 * ```yaml
 * stages:
 *   - { name: pilot, tags: [pilot], window: 15m }
 *   - { name: canary, percent: 5, min_devices: 1, window: 1h }
 *   - { name: wide, percent: 25, min_devices: 2, window: 2h }
 *   - { name: full, percent: 100 }
 * gates:
 *   latency_p95_ms: { max_regression_pct: 25 }
 *   error_rate: { max: 0.05, max_regression_pct: 50 }
 *   restarts: { max: 3, per: 10m }
 *   ooms: { max: 0 }
 *   failures: { max_devices: 0, max_pct: 0.5 }
 *   min_reports: 3
 * inconclusive: hold
 * prestage: true
 * ```
 *
 * Why it works at both ends of the scale:
 * - **5-device site.** 5 % of 5 is 0, but `min_devices: 1` puts exactly one device (the lowest
 *   cohort position) in the canary, and `min_devices: 2` two in `wide`, so the rollout walks
 *   1 → 2 → 5 devices and always keeps devices on the previous version as the relative baseline
 *   until `full`. `min_reports: 3` cannot be met by a 1-device canary: the gates require
 *   min(min_reports, devices in the stage's cohort) distinct reporters, i.e. the canary device
 *   itself. Without `pilot`-tagged devices the pilot stage is empty and passes after its window.
 * - **5,000-device fleet.** The canary is 250 devices and `wide` 1,250: enough for merged latency
 *   sketches and error rates to be meaningful, and a failure touches at most 5 % of the fleet.
 *   The quorum of 3 distinct reporting devices is a floor against a single device's word, not a
 *   sample-size target: the windows (1 h, 2 h) make every healthy device report many times.
 * - No absolute latency ceiling: it depends on the model and the hardware; the relative gate
 *   (p95 at most 25 % worse than the previous version over the same window) needs no tuning.
 *   The first release of a model has no baseline and passes on error rate, restarts and OOMs.
 * - A device fails the release on a crash loop (restarts > 3 in 10 min), any OOM, any load/probe
 *   failure or local rollback; it rolls back by itself at once. The stage aborts (at once, without
 *   waiting for the window) when more cohort devices failed than the budget
 *   max(max_devices, ⌊max_pct × cohort / 100⌋) = ⌊0.5 % × cohort⌋:
 *   | cohort        | 1–5 | 100 | 199 | 200 | 250 (canary of 5,000) | 1,000 | 1,250 (wide) | 5,000 |
 *   | tolerated     |  0  |  0  |  0  |  1  |          1            |   5   |      6       |  25   |
 *   Pilots, canaries of small sites and any stage under 200 devices abort on their first failed
 *   device: there, one failure is a large share of the evidence. A 1,000-device stage tolerates a
 *   handful (5): on cheap edge hardware a few devices out of a thousand have a bad minute in any
 *   window (SD card, power, thermal throttling, an operator's kill -9), and one of them must not
 *   stop the release for the 995 that run it well. A release that is really bad fails on a large
 *   share of its devices, so it still aborts, after its 6th failure; the error-rate and latency
 *   gates judge the devices that keep running it. `max_devices: 0` so the absolute floor never
 *   loosens small stages; raise it (or `max_pct`) per release when a flaky fleet needs it.
 * - Policies signed before `failures` existed tolerate no failed device (budget 0): that is what
 *   they meant when they were signed, and every node, old or new, judges them the same way.
 */
export const DEFAULT_POLICY: RolloutPolicy = {
  stages: [
    { name: 'pilot', percent: 0, min_devices: 0, tags: ['pilot'], window_ms: 15 * 60_000 },
    { name: 'canary', percent: 5, min_devices: 1, tags: [], window_ms: 60 * 60_000 },
    { name: 'wide', percent: 25, min_devices: 2, tags: [], window_ms: 2 * 60 * 60_000 },
    { name: 'full', percent: 100, min_devices: 0, tags: [], window_ms: 0 },
  ],
  gates: {
    latency_p95_ms: { max_regression_pct: 25 },
    error_rate: { max: 0.05, max_regression_pct: 50 },
    restarts: { max: 3, per_ms: 10 * 60_000 },
    ooms: { max: 0 },
    failures: { max_devices: 0, max_pct: 0.5 },
    min_reports: 3,
  },
  exclude_tags: [],
  inconclusive: 'hold',
  prestage: true,
}
