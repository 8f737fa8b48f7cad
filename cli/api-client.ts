/**
 * The typed client of the daemons' HTTP API: one method per route, typed with the server's own
 * exported types (node/api/status.ts, node/rollout/routes.ts, seed/release-routes.ts,
 * seed/device-routes.ts), so a change of a route's shape breaks the CLI's type check, not its run.
 *
 * How it works: `ApiClient.connect(opts)` finds the base URL (`--api`, else `<data>/node.json`,
 * else the default loopback address) and the bearer token (`LLMESH_API_TOKEN`). Each call sends
 * one request with a timeout and reads at most `MAX_RESPONSE_BYTES`. Failures are typed
 * (cli/output.ts): no answer → UnreachableError naming the cause (exit 3); an error answer →
 * RefusedError with the daemon's `{ error: { code, message } }` (node/api/errors.ts, exit 4).
 *
 * This module imports no daemon code at run time (types only): `llmesh status` stays fast.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ErrorBody } from '../node/api/errors.ts'
import type { NodeStatus } from '../node/api/status.ts'
import { envValue } from '../node/config/options.ts'
import { DEFAULT_API, NODE_INFO_FILE } from '../node/constants.ts'
import type { CommandRequest } from '../node/rollout/commands.ts'
import type { CommandResponse, MessageResponse, ReleaseRolloutJson, RolloutJson } from '../node/rollout/routes.ts'
import type { LoopErrors } from '../node/telemetry/faults.ts'
import type { DeviceListResponse, EnrollRequest, EnrollResponse, RevokeResponse } from '../seed/device-routes.ts'
import type { DeviceView } from '../seed/devices.ts'
import type { PublishResponse, ReleaseListResponse, ReleaseResponse } from '../seed/release-routes.ts'
import { CliError, RefusedError, UnreachableError } from './output.ts'

export type {
  CommandRequest,
  CommandResponse,
  DeviceListResponse,
  DeviceView,
  EnrollRequest,
  EnrollResponse,
  MessageResponse,
  PublishResponse,
  ReleaseListResponse,
  ReleaseResponse,
  ReleaseRolloutJson,
  RevokeResponse,
  RolloutJson,
}

/** The JSON of `GET /status`, with the sections the daemon's services add (rollout, loops). */
export type StatusResponse = NodeStatus & {
  rollout?: Partial<Pick<RolloutJson, 'errors' | 'conflicts'>>
  loops?: ReturnType<LoopErrors['status']>
}

/** Default timeout of one API call, ms (an upload has none). */
export const DEFAULT_TIMEOUT_MS = 15_000
/** Largest JSON answer the CLI reads, bytes (a fleet's status is far below). */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024
/** Largest signed bundle read from `GET /releases/:model/:version/bundle`, bytes. */
export const MAX_BUNDLE_BYTES = 16 * 1024 * 1024

/** Where the daemon is: `--api`, else `--data`'s node.json, else the default address. */
export interface ApiTarget {
  api?: string
  data?: string
}

/** Options of a client. */
export interface ApiClientInit {
  /** Bearer token for the API (default `LLMESH_API_TOKEN`). */
  token?: string
  timeoutMs?: number
}

/** One request, as the client sends it. */
interface Call {
  method?: 'GET' | 'POST'
  body?: RequestInit['body']
  headers?: Record<string, string>
  /** A missing route (ERR_NO_ROUTE, or a bare 404 of an older node) gives `undefined`. */
  missingOk?: boolean
  /** ERR_NOT_FOUND gives `undefined`. */
  notFoundOk?: boolean
  timeoutMs?: number | null
  maxBytes?: number
}

/** Base URL of the node the command talks to. */
export async function nodeUrl(opts: ApiTarget): Promise<string> {
  if (opts.api !== undefined) return withScheme(opts.api)
  if (opts.data !== undefined) {
    let api: unknown
    try {
      api = (JSON.parse(await readFile(join(opts.data, NODE_INFO_FILE), 'utf8')) as { api?: unknown }).api
    } catch {
      throw new UnreachableError(
        `no running node found in ${opts.data} (no ${NODE_INFO_FILE}): is the node running? see llmesh node start`,
        'ERR_NOT_RUNNING',
      )
    }
    if (typeof api !== 'string' || api === '') throw new CliError(`${NODE_INFO_FILE} names no API`, 'ERR_SCHEMA')
    return withScheme(api)
  }
  return `http://${DEFAULT_API}`
}

function withScheme(api: string): string {
  return (api.includes('://') ? api : `http://${api}`).replace(/\/$/, '')
}

/**
 * The error for an API error answer: the API's `{ error: { code, message } }`, so `--json`
 * callers and the one-line stderr error keep the daemon's stable `ERR_*` code. An answer without
 * one (a proxy, an older node's `{ error: code, message }`) still gives its code or `ERR_API`.
 */
export function apiError(status: number, body: unknown): RefusedError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { error?: unknown; message?: unknown }
  const e = (typeof b.error === 'object' && b.error !== null ? b.error : {}) as Partial<ErrorBody['error']>
  const code = [e.code, b.error].find((c): c is string => typeof c === 'string' && /^ERR_[A-Z0-9_]+$/.test(c))
  const message = [e.message, b.message].find((m): m is string => typeof m === 'string' && m !== '')
  return new RefusedError((message ?? `HTTP ${status}`).slice(0, 2048), code ?? 'ERR_API', status)
}

/** Why a fetch got no answer, in words an operator can act on. */
export function unreachable(url: string, err: unknown): UnreachableError {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } }
  if (e?.name === 'TimeoutError') return new UnreachableError(`${url}: no answer in time`, 'ERR_TIMEOUT')
  const cause = e?.cause
  const where = new URL(url).host
  if (cause?.code === 'ECONNREFUSED') {
    const addr = /ECONNREFUSED (\S+)/.exec(cause.message ?? '')?.[1] ?? where
    return new UnreachableError(`ECONNREFUSED ${addr}: is the node running? see llmesh node start`)
  }
  if (cause?.code !== undefined) return new UnreachableError(`${cause.code} ${where}: ${cause.message ?? 'no answer'}`)
  return new UnreachableError(`cannot reach ${url}: ${cause?.message ?? e?.message ?? String(err)}`)
}

/** Reads at most `max` bytes of a body (a hostile or broken daemon cannot fill the CLI's memory). */
async function readCapped(res: Response, max: number): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > max) throw tooLarge(max)
  const chunks: Uint8Array[] = []
  let size = 0
  if (res.body === null) return new Uint8Array()
  for await (const chunk of res.body) {
    size += chunk.byteLength
    if (size > max) throw tooLarge(max)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

function tooLarge(max: number): CliError {
  return new CliError(`the daemon's answer is larger than ${max} bytes`, 'ERR_OVERSIZED')
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    return undefined
  }
}

/** Sends one request; returns the raw answer bytes of a 2xx, `undefined` for an allowed miss. */
async function send(url: string, call: Call, token: string | undefined): Promise<Uint8Array | undefined> {
  const headers = new Headers(call.headers)
  if (token !== undefined && token !== '' && !headers.has('authorization'))
    headers.set('authorization', `Bearer ${token}`)
  const timeoutMs = call.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : call.timeoutMs
  let res: Response
  try {
    res = await fetch(url, {
      method: call.method ?? 'GET',
      headers,
      body: call.body,
      ...(call.body instanceof ReadableStream ? { duplex: 'half' } : {}),
      ...(timeoutMs === null ? {} : { signal: AbortSignal.timeout(timeoutMs) }),
    } as RequestInit)
  } catch (err) {
    throw unreachable(url, err)
  }
  const bytes = await readCapped(res, call.maxBytes ?? MAX_RESPONSE_BYTES)
  if (res.ok) return bytes
  const err = apiError(res.status, parseJson(bytes))
  const noRoute = err.code === 'ERR_NO_ROUTE' || (res.status === 404 && err.code === 'ERR_API')
  if (noRoute && call.missingOk === true) return undefined
  if (err.code === 'ERR_NOT_FOUND' && call.notFoundOk === true) return undefined
  throw err
}

/** The API token of the operator's environment (`LLMESH_API_TOKEN`, node/config/options.ts). */
function envToken(): string | undefined {
  return envValue('api_token')
}

const seg = encodeURIComponent

/** The typed client: one method per route of the node and seed APIs. */
export class ApiClient {
  readonly base: string
  private readonly token: string | undefined
  private readonly timeoutMs: number

  constructor(base: string, init: ApiClientInit = {}) {
    this.base = withScheme(base)
    this.token = init.token ?? envToken()
    this.timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS
  }

  /** A client of the daemon `opts` names. */
  static async connect(opts: ApiTarget, init: ApiClientInit = {}): Promise<ApiClient> {
    return new ApiClient(await nodeUrl(opts), init)
  }

  private async json<T>(path: string, call: Call = {}): Promise<T | undefined> {
    const bytes = await send(`${this.base}${path}`, { timeoutMs: this.timeoutMs, ...call }, this.token)
    if (bytes === undefined) return undefined
    const body = parseJson(bytes)
    if (body === undefined) throw new CliError(`${this.base}${path} answered something that is not JSON`, 'ERR_SCHEMA')
    return body as T
  }

  private async must<T>(path: string, call: Call = {}): Promise<T> {
    return (await this.json<T>(path, call)) as T
  }

  private postJson<T>(path: string, body: unknown): Promise<T> {
    return this.must<T>(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  }

  /** `GET /status`: what the node knows. */
  status(): Promise<StatusResponse> {
    return this.must('/status')
  }

  /** `GET /rollout`: every release's rollout status. */
  rollout(): Promise<RolloutJson> {
    return this.must('/rollout')
  }

  /** `GET /rollout/:model/:version`. */
  rolloutRelease(model: string, version: string): Promise<ReleaseRolloutJson> {
    return this.must(`/rollout/${seg(model)}/${seg(version)}`)
  }

  /** `POST /rollout/commands`: the node signs the command with the operator key it holds. */
  command(req: CommandRequest): Promise<CommandResponse> {
    return this.postJson('/rollout/commands', req)
  }

  /** `POST /messages`: signed wire bytes, verified and gossiped by the node. */
  postMessage(wire: Uint8Array): Promise<MessageResponse> {
    return this.must('/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: wire,
    })
  }

  /** `GET /releases` (seed). */
  releases(): Promise<ReleaseListResponse> {
    return this.must('/releases')
  }

  /** `GET /releases/:model/:version` (seed). */
  release(model: string, version: string): Promise<ReleaseResponse> {
    return this.must(`/releases/${seg(model)}/${seg(version)}`)
  }

  /** `GET /releases/:model/:version/bundle` (seed): the signed wire bytes, at most `MAX_BUNDLE_BYTES`. */
  async releaseBundle(model: string, version: string): Promise<Uint8Array> {
    const path = `/releases/${seg(model)}/${seg(version)}/bundle`
    const bytes = await send(
      `${this.base}${path}`,
      { timeoutMs: this.timeoutMs, maxBytes: MAX_BUNDLE_BYTES },
      this.token,
    )
    return bytes ?? new Uint8Array()
  }

  /** `POST /releases` (seed): streams a GGUF file; no timeout (a large upload takes its time). */
  publish(query: URLSearchParams, headers: Record<string, string>, body: ReadableStream): Promise<PublishResponse> {
    return this.must(`/releases?${query}`, { method: 'POST', headers, body, timeoutMs: null })
  }

  /** `GET /devices` (seed); `undefined` on a node without the route. */
  devices(): Promise<DeviceListResponse | undefined> {
    return this.json('/devices', { missingOk: true })
  }

  /** `GET /devices/:peer` (seed); `undefined` when the node does not know it or has no such route. */
  device(peer: string): Promise<DeviceView | undefined> {
    return this.json(`/devices/${seg(peer)}`, { missingOk: true, notFoundOk: true })
  }

  /** `POST /devices/:peer/enrollment` (seed). */
  enroll(peer: string, req: EnrollRequest): Promise<EnrollResponse> {
    return this.postJson(`/devices/${seg(peer)}/enrollment`, req)
  }

  /** `POST /devices/:peer/revocation` (seed). */
  revoke(peer: string, reason: string): Promise<RevokeResponse> {
    return this.postJson(`/devices/${seg(peer)}/revocation`, { reason })
  }
}

/**
 * Compatibility with the untyped client (kept for code written against it): calls `url` and
 * returns its JSON body. Prefer the typed `ApiClient` methods.
 * @deprecated use `ApiClient.connect(opts)` and its per-route methods.
 */
export async function callApi(
  url: string,
  init?: RequestInit,
  opts: { missingOk?: boolean; timeoutMs?: number } = {},
): Promise<unknown> {
  const headers = Object.fromEntries(new Headers(init?.headers).entries())
  const bytes = await send(
    url,
    {
      method: (init?.method ?? 'GET') as Call['method'],
      headers,
      body: init?.body,
      missingOk: opts.missingOk,
      timeoutMs: opts.timeoutMs,
    },
    envToken(),
  )
  return bytes === undefined ? undefined : (parseJson(bytes) ?? {})
}
