/**
 * Prometheus metrics of the seed's publishing (served by the seed's GET /metrics through
 * `DeviceParts.registries`): `llmesh_publish_refusals_total{code}` counts every publish the seed
 * refused (POST /releases, and POST /agent-releases: agent releases and their staged packages),
 * by the stable error code of its answer (ERR_SEQ_AUTHORITY when the operator's seq counter cannot
 * be read or written, ERR_VERSION_EXISTS, ERR_DOWNGRADE, ERR_INVALID_REQUEST, …).
 * The label is bounded: a code that is not `ERR_` + capitals is counted as `ERR_OTHER`, and the
 * number of distinct codes is capped (`MAX_REFUSAL_CODES`, the rest go to `ERR_OTHER`).
 * ERR_SEQ_AUTHORITY is exposed at 0 from the start, so a first refusal is an increase.
 */
import { Counter, Registry } from 'prom-client'
import { MAX_REFUSAL_CODES } from './constants.ts'

const CODE = /^ERR_[A-Z0-9_]{1,48}$/

/** The seed's publish metrics. */
export interface PublishMetrics {
  readonly registry: Registry
  /** Counts one refused publish with the code of its error answer. */
  refused(code: string): void
}

/** Creates the publish metrics on their own registry. */
export function createPublishMetrics(prefix = 'llmesh_'): PublishMetrics {
  const registry = new Registry()
  const refusals = new Counter({
    name: `${prefix}publish_refusals_total`,
    help: 'Release publishes (POST /releases, POST /agent-releases) the seed refused, by error code',
    labelNames: ['code'],
    registers: [registry],
  })
  const seen = new Set<string>(['ERR_SEQ_AUTHORITY'])
  refusals.inc({ code: 'ERR_SEQ_AUTHORITY' }, 0)
  return {
    registry,
    refused(code) {
      let label = CODE.test(code) ? code : 'ERR_OTHER'
      if (!seen.has(label)) {
        if (seen.size >= MAX_REFUSAL_CODES) label = 'ERR_OTHER'
        else seen.add(label)
      }
      refusals.inc({ code: label })
    },
  }
}
