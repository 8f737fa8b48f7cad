/**
 * The publish request as the seed's HTTP API receives it: query parameters and headers, parsed
 * into a `ReleaseRequest`. Bounded and typed: every refusal is an InvalidInputError (400), or a
 * ReservedNameError (400 ERR_RESERVED_NAME) for a model named like agent releases, before any
 * state (known releases, the seq counter) is read.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { basename } from 'node:path'
import { checkModelName } from '../protocols/agent/reserved-names.ts'
import { InvalidInputError } from '../protocols/errors.ts'
import { decodeProbeHeader } from '../protocols/probe-file.ts'
import { parsePolicyYaml } from '../protocols/rollout/policy-yaml.ts'
import { CpuArch, type ReleaseManifest } from '../protocols/schemas/index.ts'
import type { ReleaseRequest } from './release-checks.ts'

/** Query parameters of `POST /releases`. */
export interface PublishQuery {
  model?: string
  version?: string
  approved_by?: string
  arch?: string
  runtime?: string
  min_ram_mb?: string
  ttl_days?: string
  /** `1`/`true`: publish below the model's highest version (recorded in the manifest). */
  allow_downgrade?: string
}

/** Longest policy header accepted, characters of base64 (the YAML parser bounds the text again). */
const MAX_POLICY_HEADER = 96 * 1024
/** Longest file name the client may give for its upload. */
const MAX_NAME = 128

function list(s: string | undefined): string[] | undefined {
  const v = s
    ?.split(',')
    .map((x) => x.trim())
    .filter(Boolean)
  return v && v.length > 0 ? v : undefined
}

function num(s: string | undefined, what: string): number | undefined {
  if (s === undefined || s === '') return undefined
  const n = Number(s)
  if (!Number.isFinite(n) || n < 0)
    throw new InvalidInputError(`${what} must be a non-negative number, got ${s.slice(0, 32)}`)
  return n
}

function flag(s: string | undefined, what: string): boolean {
  if (s === undefined || s === '' || s === '0' || s === 'false') return false
  if (s === '1' || s === 'true') return true
  throw new InvalidInputError(`${what} must be true or false`)
}

/** Parses the request; throws InvalidInputError. */
export function parsePublishRequest(q: PublishQuery, headers: IncomingHttpHeaders): ReleaseRequest {
  if (typeof q.model !== 'string' || typeof q.version !== 'string' || !q.model || !q.version)
    throw new InvalidInputError('model and version are required')
  checkModelName(q.model)
  const arch = list(q.arch)
  for (const a of arch ?? [])
    if (!CpuArch.safeParse(a).success) throw new InvalidInputError(`unknown architecture ${a.slice(0, 32)}`)
  const policyHeader = headers['x-llmesh-policy']
  let policy: ReleaseRequest['policy']
  if (typeof policyHeader === 'string' && policyHeader.length > 0) {
    if (policyHeader.length > MAX_POLICY_HEADER) throw new InvalidInputError('policy is too large')
    policy = parsePolicyYaml(Buffer.from(policyHeader, 'base64').toString('utf8'), {
      filename: uploadName(headers['x-llmesh-policy-name'], 'policy.yaml'),
    })
  }
  const probesHeader = headers['x-llmesh-probes']
  const probes =
    typeof probesHeader === 'string' && probesHeader.length > 0 ? decodeProbeHeader(probesHeader) : undefined
  const ttlDays = num(q.ttl_days, 'ttl_days')
  return {
    model: q.model,
    version: q.version,
    policy,
    approvedBy: list(q.approved_by),
    architectures: arch as ReleaseManifest['architectures'] | undefined,
    runtime: q.runtime,
    minRamMb: num(q.min_ram_mb, 'min_ram_mb'),
    ttlMs: ttlDays === undefined ? undefined : Math.round(ttlDays * 86_400_000),
    allowDowngrade: flag(q.allow_downgrade, 'allow_downgrade'),
    ...(probes !== undefined ? { probes } : {}),
  }
}

/** A client-given file name, reduced to a short base name (for error messages only). */
export function uploadName(header: string | string[] | undefined, fallback = 'upload'): string {
  if (typeof header !== 'string') return fallback
  const name = basename(header.replace(/\\/g, '/'))
    .replace(/[^\w.@+-]/g, '_')
    .slice(0, MAX_NAME)
  return name.length > 0 ? name : fallback
}
