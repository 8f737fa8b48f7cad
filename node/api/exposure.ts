/**
 * The start-up check of the API's bind address: an API reachable from the network without a
 * token would let any LAN neighbour sign operator commands and use the model. A non-loopback
 * address (`0.0.0.0` and `::` included: every interface) needs a token, or the operator's explicit
 * `--api-insecure`, which starts with a loud warning. Checked before anything listens.
 */
import { isIP } from 'node:net'
import { LlmeshError } from '../../protocols/errors.ts'
import { LOOPBACK_ADDRESS } from './access.ts'
import { parseHostPort } from './host-port.ts'

/** The API would listen beyond loopback with no token. */
export class ApiUnprotectedError extends LlmeshError {
  constructor(message: string) {
    super('ERR_API_UNPROTECTED', message)
    this.name = 'ApiUnprotectedError'
  }
}

/** What the check looks at. */
export interface ApiExposureInit {
  /** `host:port` of the API. */
  address: string
  token?: string
  /** `--api-insecure`: accept a non-loopback address without a token. */
  insecure?: boolean
}

/** True for a host that is loopback whatever the resolver says: `localhost`, 127.0.0.0/8, ::1. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  if (h === 'localhost') return true
  return isIP(h) !== 0 && LOOPBACK_ADDRESS.test(h)
}

/**
 * `'loopback'` or `'token'` (safe), `'insecure'` (non-loopback, no token, `--api-insecure`: the
 * caller logs the warning); throws ApiUnprotectedError otherwise, and InvalidInputError for a bad address.
 */
export function checkApiExposure(init: ApiExposureInit): 'loopback' | 'token' | 'insecure' {
  const { host } = parseHostPort(init.address)
  if (isLoopbackHost(host)) return 'loopback'
  if (init.token !== undefined && init.token !== '') return 'token'
  if (init.insecure === true) return 'insecure'
  throw new ApiUnprotectedError(
    `the API address ${init.address} is reachable beyond this machine and no API token is set: anyone on ` +
      'the network could send rollout commands and use the model. Give --api-token-file <file> (or ' +
      'LLMESH_API_TOKEN), bind the API to 127.0.0.1, or pass --api-insecure to accept the risk',
  )
}

/** The warning logged when the API starts insecure. */
export const INSECURE_API_WARNING =
  'API INSECURE: listening beyond loopback with no token (--api-insecure): any host on the network can send rollout commands and use the model'
