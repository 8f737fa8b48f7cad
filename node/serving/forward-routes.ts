/**
 * The HTTP side of federated serving, between the OpenAI routes (node/inference/openai-routes.ts)
 * and the libp2p side (forwarder.ts, responder.ts):
 * - `forwardHook`: the routes call it for a request this node cannot serve; it opens the request
 *   on a peer and relays the peer's status, headers and body as they come (SSE streams stay
 *   streams), naming the serving peer and version in `x-llmesh-served-by` / `-version`. A body
 *   that breaks off after the head: an SSE error event then the end (as a local stream does), or a
 *   reset connection for a JSON body (never a truncated JSON the client would parse).
 * - `injectExecute`: runs a peer's forwarded request through this node's own routes (fastify
 *   `inject` from loopback, marked `x-llmesh-forwarded: <id>`, so the routes never forward it
 *   again); the routes find the request's abort signal by that id (`ForwardedSignals`), so a
 *   requester that goes away stops the generation.
 */
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { InferPath } from '../../protocols/infer.ts'
import { HEADER_FORWARDED, HEADER_SERVED_BY, HEADER_SERVED_VERSION } from './constants.ts'
import type { Forwarder } from './forwarder.ts'
import type { LocalExecute } from './responder.ts'

/** A request the routes could not serve here. */
export interface ForwardAsk {
  path: InferPath
  model: string
  /** The client's JSON body, as it came. */
  body: Record<string, unknown>
  reply: FastifyReply
}

/** Serves a request through a peer: true once answered; false when no peer serves the model. */
export type ForwardHook = (ask: ForwardAsk) => Promise<boolean>

/** The hook over a forwarder (undefined: forwarding off, or the mesh not running). */
export function forwardHook(forwarder: () => Forwarder | undefined): ForwardHook {
  return async ({ path, model, body, reply }) => {
    const f = forwarder()
    if (f === undefined) return false
    const raw = reply.raw
    const ac = new AbortController()
    const onClose = (): void => {
      if (!raw.writableFinished) ac.abort()
    }
    raw.on('close', onClose)
    try {
      const res = await f.open({ v: 1, path, model, body }, ac.signal)
      if (res === undefined) return false
      const sse = res.head.content_type.startsWith('text/event-stream')
      reply.hijack()
      raw.writeHead(res.head.status, {
        'content-type': res.head.content_type,
        ...(sse ? { 'cache-control': 'no-cache', 'x-accel-buffering': 'no' } : {}),
        ...(res.head.retry_after !== undefined ? { 'retry-after': res.head.retry_after } : {}),
        [HEADER_SERVED_BY]: res.peer,
        ...(res.head.version !== undefined ? { [HEADER_SERVED_VERSION]: res.head.version } : {}),
      })
      try {
        for await (const chunk of res.body) {
          if (!raw.write(chunk)) await once(raw, 'drain', { signal: ac.signal })
        }
        raw.end()
      } catch {
        if (!sse || raw.destroyed) raw.destroy()
        else {
          const e = { message: 'the serving peer broke off its answer', type: 'server_error', param: null }
          raw.end(`data: ${JSON.stringify({ error: { ...e, code: 'forward_failed' } })}\n\n`)
        }
      }
      return true
    } finally {
      raw.off('close', onClose)
    }
  }
}

/** The abort signals of the forwarded requests being served, by their `x-llmesh-forwarded` id. */
export class ForwardedSignals {
  private readonly m = new Map<string, AbortSignal>()
  add(signal: AbortSignal): string {
    const id = randomUUID()
    this.m.set(id, signal)
    return id
  }
  get(id: string | undefined): AbortSignal | undefined {
    return id === undefined ? undefined : this.m.get(id)
  }
  delete(id: string): void {
    this.m.delete(id)
  }
  get size(): number {
    return this.m.size
  }
}

/** Runs forwarded requests through `app`'s routes (the OpenAI routes must be registered on it). */
export function injectExecute(app: () => FastifyInstance | undefined, signals: ForwardedSignals): LocalExecute {
  return async (req, signal) => {
    const a = app()
    if (a === undefined) throw new Error('the API is not running')
    const id = signals.add(signal)
    try {
      const res = await a.inject({
        method: 'POST',
        url: req.path,
        payload: req.body,
        headers: { 'content-type': 'application/json', [HEADER_FORWARDED]: id },
        payloadAsStream: true,
      })
      const retry = res.headers['retry-after']
      const body = res.stream()
      body.once('close', () => signals.delete(id))
      return {
        status: res.statusCode,
        contentType: String(res.headers['content-type'] ?? 'application/json'),
        retryAfter: typeof retry === 'string' ? retry : undefined,
        body,
        abort: () => {
          signals.delete(id)
          ;(res.raw.res as { destroy(): void }).destroy()
        },
      }
    } catch (err) {
      signals.delete(id)
      throw err
    }
  }
}
