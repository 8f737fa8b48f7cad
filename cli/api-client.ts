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
import type { AgentInfo } from '../node/agent-update/updater.ts'
import type { NodeStatus } from '../node/api/status.ts'
import type { ReportImportResult } from '../node/fleet/report-import.ts'
import type { ImportResult } from '../node/install/bundle-import.ts'
import type { ExportResponse } from '../node/install/bundle-routes.ts'
import type { CommandRequest } from '../node/rollout/commands.ts'
import type { CommandResponse, MessageResponse, ReleaseRolloutJson, RolloutJson } from '../node/rollout/routes.ts'
import type { LoopErrors } from '../node/telemetry/faults.ts'
import type { AgentPublishResponse, AgentReleaseRow } from '../seed/agent-routes.ts'
import type { DeviceListResponse, EnrollRequest, EnrollResponse, RevokeResponse } from '../seed/device-routes.ts'
import type { DeviceView } from '../seed/devices.ts'
import type { PublishResponse, ReleaseListResponse, ReleaseResponse } from '../seed/release-routes.ts'
import {
  type ApiTarget,
  type Call,
  envToken,
  MAX_BUNDLE_BYTES,
  nodeUrl,
  parseJson,
  seedOnly,
  seg,
  send,
  withScheme,
} from './api-transport.ts'
import { CliError } from './output.ts'

/** Largest report stream read (protocols/fleet-report.ts: its messages, the index and frame headers). */
const MAX_REPORT_STREAM_BYTES = 640 * 1024 * 1024
/** Largest answer of a report import (counts and at most 50 refusals). */
const MAX_REPORT_ANSWER_BYTES = 1024 * 1024

export {
  type ApiTarget,
  apiError,
  DEFAULT_TIMEOUT_MS,
  MAX_BUNDLE_BYTES,
  MAX_RESPONSE_BYTES,
  nodeUrl,
  unreachable,
} from './api-transport.ts'

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
  /** The agent update (node/agent-update/): devices only. */
  agent?: AgentInfo
}

/** Largest export answer read (index, envelopes and feed proofs, base64). */
const MAX_EXPORT_HEAD_BYTES = 256 * 1024 * 1024
/** Largest chunk read (the chunker's maximum is 256 KiB). */
const MAX_CHUNK_BYTES = 1024 * 1024

/** Options of a client. */
export interface ApiClientInit {
  /** Bearer token for the API (default `LLMESH_API_TOKEN`). */
  token?: string
  /** Timeout of one call, ms (default `LLMESH_API_TIMEOUT`, else 15 s; uploads have none). */
  timeoutMs?: number
}

/** The typed client: one method per route of the node and seed APIs. */
export class ApiClient {
  readonly base: string
  private readonly token: string | undefined
  /** undefined: `LLMESH_API_TIMEOUT`, else 15 s, resolved per call (api-transport.ts `envTimeoutMs`). */
  private readonly timeoutMs: number | undefined

  constructor(base: string, init: ApiClientInit = {}) {
    this.base = withScheme(base)
    this.token = init.token ?? envToken()
    this.timeoutMs = init.timeoutMs
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
    return seedOnly('releases', () => this.must('/releases'))
  }

  /** `GET /releases/:model/:version` (seed). */
  release(model: string, version: string): Promise<ReleaseResponse> {
    return seedOnly('releases', () => this.must(`/releases/${seg(model)}/${seg(version)}`))
  }

  /** `GET /releases/:model/:version/bundle` (seed): the signed wire bytes, at most `MAX_BUNDLE_BYTES`. */
  async releaseBundle(model: string, version: string): Promise<Uint8Array> {
    const path = `/releases/${seg(model)}/${seg(version)}/bundle`
    const bytes = await seedOnly('releases', () =>
      send(`${this.base}${path}`, { timeoutMs: this.timeoutMs, maxBytes: MAX_BUNDLE_BYTES }, this.token),
    )
    return bytes ?? new Uint8Array()
  }

  /** `POST /releases` (seed): streams a GGUF file; no timeout (a large upload takes its time). */
  publish(query: URLSearchParams, headers: Record<string, string>, body: ReadableStream): Promise<PublishResponse> {
    return seedOnly('releases', () =>
      this.must(`/releases?${query}`, { method: 'POST', headers, body, timeoutMs: null }),
    )
  }

  /** `POST /agent-releases` (seed): streams an agent package (or stages it, or names staged ones); no timeout. */
  publishAgent<T = AgentPublishResponse>(
    query: URLSearchParams,
    headers: Record<string, string>,
    body?: ReadableStream,
  ): Promise<T> {
    return seedOnly('releases', () =>
      this.must(`/agent-releases?${query}`, { method: 'POST', headers, body, timeoutMs: null }),
    )
  }

  /** `GET /agent-releases` (seed). */
  agentReleases(): Promise<{ releases: AgentReleaseRow[] }> {
    return seedOnly('releases', () => this.must('/agent-releases'))
  }

  /** `GET /releases/:model/:version/export` (any node holding the release): a bundle's small files. */
  releaseExport(model: string, version: string, since?: string): Promise<ExportResponse> {
    const q = since === undefined ? '' : `?${new URLSearchParams({ since })}`
    return this.must(`/releases/${seg(model)}/${seg(version)}/export${q}`, { maxBytes: MAX_EXPORT_HEAD_BYTES })
  }

  /** `GET /releases/:model/:version/chunks/:sha256`: one chunk's bytes. */
  async releaseChunk(model: string, version: string, hash: string): Promise<Uint8Array> {
    const path = `/releases/${seg(model)}/${seg(version)}/chunks/${seg(hash)}`
    const bytes = await send(
      `${this.base}${path}`,
      { timeoutMs: this.timeoutMs, maxBytes: MAX_CHUNK_BYTES },
      this.token,
    )
    return bytes ?? new Uint8Array()
  }

  /** `POST /releases/import`: streams a bundle (an import upload); no timeout. */
  releaseImport(body: ReadableStream): Promise<ImportResult> {
    return this.must('/releases/import', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
      timeoutMs: null,
    })
  }

  /** `GET /fleet/report[?since=ms]`: the report stream of the node's signed messages (bounded). */
  async fleetReport(since?: number): Promise<Uint8Array> {
    const q = since === undefined ? '' : `?${new URLSearchParams({ since: String(since) })}`
    const bytes = await send(
      `${this.base}/fleet/report${q}`,
      { timeoutMs: null, maxBytes: MAX_REPORT_STREAM_BYTES },
      this.token,
    )
    return bytes ?? new Uint8Array()
  }

  /** `POST /fleet/report/import`: streams a report; no timeout. */
  fleetReportImport(body: ReadableStream): Promise<ReportImportResult> {
    return this.must('/fleet/report/import', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
      timeoutMs: null,
      maxBytes: MAX_REPORT_ANSWER_BYTES,
    })
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
    return seedOnly('devices', () => this.postJson(`/devices/${seg(peer)}/enrollment`, req))
  }

  /** `POST /devices/:peer/revocation` (seed). */
  revoke(peer: string, reason: string): Promise<RevokeResponse> {
    return seedOnly('devices', () => this.postJson(`/devices/${seg(peer)}/revocation`, { reason }))
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
