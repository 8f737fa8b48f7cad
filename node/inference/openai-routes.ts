/**
 * OpenAI-compatible HTTP routes as a fastify 5 plugin:
 *   GET /v1/models, POST /v1/completions, POST /v1/chat/completions (stream or not),
 *   POST /v1/embeddings (string or array input, `encoding_format` float or base64); any other
 *   /v1/… route answers 404 in OpenAI's shape.
 * Streaming is Server-Sent Events (`data: {json}\n\n`, then `data: [DONE]\n\n`); headers are sent
 * with the first token, so errors before it still get a proper status (429/503/…). Errors use
 * OpenAI's shape `{ error: { message, type, param, code } }`.
 * Auth: with `apiToken`, callers not on loopback must send `Authorization: Bearer <token>`.
 * Federated serving (node/serving/): with `forward`, a request this device cannot serve (model not
 * here, deactivated or unavailable, or the queue full) is served through a peer, unless it was
 * itself forwarded (`x-llmesh-forwarded`: one hop at most); GET /v1/models lists the peers' models
 * too (`remoteModels`), each entry marked `served: local | remote`.
 * Prompts and completions are never logged.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { InferPath } from '../../protocols/infer.ts'
import { HEADER_FORWARDED } from '../serving/constants.ts'
import type { ForwardHook } from '../serving/forward-routes.ts'
import type { RemoteModel } from '../serving/peer-choice.ts'
import { ModelDeactivatedError, ModelUnavailableError, RequestAbortedError } from './errors.ts'
import type { InferenceSupervisor } from './inference-supervisor.ts'
import type { InferenceMetrics } from './metrics.ts'
import { ApiError, errorBody, toApiError } from './openai-errors.ts'
import { modelList } from './openai-models.ts'
import { ChatBody, CompletionBody, chatInput, completionInput, EmbeddingBody, parseBody } from './openai-schemas.ts'
import type { GenerateInput, GenerateResult } from './types.ts'

/** Options of the plugin. */
export interface OpenAIRoutesOptions {
  supervisor: InferenceSupervisor
  metrics?: InferenceMetrics
  /** Bearer token required from non-loopback callers. Unset: no auth. */
  apiToken?: string
  /** Name the model is served under (`model` in requests and responses). Default: the loaded model's name. */
  modelName?: string | (() => string | undefined)
  /** Serves requests this device cannot through a peer (federated serving; unset: off). */
  forward?: ForwardHook
  /** Models peers serve that `local` does not hold, at most `max` (for GET /v1/models). */
  remoteModels?: (local: ReadonlySet<string>, max: number) => RemoteModel[]
  /** The abort signal of a forwarded request (by its `x-llmesh-forwarded` id): its requester went away. */
  forwardedSignal?: (id: string | undefined) => AbortSignal | undefined
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/
const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** Registers the OpenAI-compatible routes. Use with `fastify.register(openaiRoutes, opts)`. */
export async function openaiRoutes(fastify: FastifyInstance, opts: OpenAIRoutesOptions): Promise<void> {
  const { supervisor, metrics } = opts
  const counted = new WeakSet<object>()
  const tokenDigest = opts.apiToken === undefined ? undefined : digest(opts.apiToken)
  const servedName = (): string | undefined =>
    typeof opts.modelName === 'function' ? opts.modelName() : (opts.modelName ?? supervisor.model?.name)

  fastify.setErrorHandler((err, request, reply) => {
    const e = toApiError(err)
    if (e.status >= 500) request.log.warn({ code: e.code, err: (err as Error).message }, 'inference request failed')
    // errors from supervisor.generate() are counted by the supervisor's own events
    if (!counted.has(err as object)) metrics?.recordError(e.code)
    if (e.retryAfter !== undefined) void reply.header('retry-after', String(e.retryAfter))
    return reply.code(e.status).send(errorBody(e))
  })

  fastify.addHook('onRequest', async (request) => {
    if (tokenDigest === undefined || LOOPBACK.test(request.socket.remoteAddress ?? '')) return
    const m = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')
    if (m === null || !timingSafeEqual(digest(m[1]), tokenDigest)) {
      throw new ApiError(401, 'invalid_request_error', 'invalid_api_key', 'missing or invalid bearer token')
    }
  })

  // Unknown /v1/… routes answer like OpenAI's API, so its clients show a proper error.
  await fastify.register(
    async (v1) => {
      v1.setNotFoundHandler((request, reply) => {
        const e = new ApiError(
          404,
          'invalid_request_error',
          'unknown_url',
          `Unknown request URL: ${request.method} ${request.url.split('?')[0]}`,
        )
        return reply.code(404).send(errorBody(e))
      })
    },
    { prefix: '/v1' },
  )

  fastify.get('/v1/models', async () => {
    const name = servedName()
    const local = name === undefined ? undefined : { name, model: supervisor.model }
    return modelList(local, opts.remoteModels)
  })

  /** Serves the request through a peer when this device cannot (see the header); true once answered. */
  const forwarded = async (
    path: InferPath,
    model: string | undefined,
    request: { headers: Record<string, unknown>; body: unknown },
    reply: FastifyReply,
  ): Promise<boolean> => {
    if (opts.forward === undefined || model === undefined || request.headers[HEADER_FORWARDED] !== undefined) {
      return false
    }
    const s = supervisor.status()
    const full = s.waiting >= supervisor.limits.maxQueue && s.active >= supervisor.limits.maxConcurrent
    if (!full) {
      try {
        checkModel(model)
        return false
      } catch {
        // not servable here: try a peer
      }
    }
    return opts.forward({ path, model, body: request.body as Record<string, unknown>, reply })
  }

  const checkModel = (requested: string | undefined): string => {
    const name = servedName()
    const off = supervisor.deactivation
    if (name === undefined && off !== undefined && (requested === undefined || requested === off.name)) {
      throw new ModelDeactivatedError(off.name, `model ${off.name} is deactivated on this device: ${off.reason}`)
    }
    if (name === undefined) throw new ModelUnavailableError('no model is being served', 5)
    if (requested !== undefined && requested !== name) {
      throw new ApiError(
        404,
        'invalid_request_error',
        'model_not_found',
        `model ${requested} is not served here`,
        'model',
      )
    }
    return name
  }
  const checkMaxTokens = (input: GenerateInput): void => {
    if (input.maxTokens > supervisor.maxTokensLimit) {
      const msg = `max_tokens must be at most ${supervisor.maxTokensLimit}`
      throw new ApiError(400, 'invalid_request_error', 'invalid_request', msg, 'max_tokens')
    }
  }

  fastify.post('/v1/completions', async (request, reply) => {
    const body = parseBody(CompletionBody, request.body)
    if (await forwarded('/v1/completions', body.model, request, reply)) return reply
    const model = checkModel(body.model)
    const input = completionInput(body)
    checkMaxTokens(input)
    const id = `cmpl-${randomUUID()}`
    const created = Math.floor(Date.now() / 1000)
    const base = { id, object: 'text_completion', created, model }
    const choice = (text: string, finish: string | null) => ({ text, index: 0, logprobs: null, finish_reason: finish })
    if (body.stream === true) {
      return stream(reply, input, body.stream_options?.include_usage === true, {
        first: () => [],
        delta: (text) => ({ ...base, choices: [choice(text, null)] }),
        last: (r) => ({ ...base, choices: [choice('', r.finishReason === 'length' ? 'length' : 'stop')] }),
        usage: (r) => ({ ...base, choices: [], usage: usage(r) }),
      })
    }
    const r = await run(reply, input)
    return { ...base, choices: [choice(r.text, r.finishReason === 'length' ? 'length' : 'stop')], usage: usage(r) }
  })

  fastify.post('/v1/chat/completions', async (request, reply) => {
    const body = parseBody(ChatBody, request.body)
    if (await forwarded('/v1/chat/completions', body.model, request, reply)) return reply
    const model = checkModel(body.model)
    const input = chatInput(body)
    checkMaxTokens(input)
    const id = `chatcmpl-${randomUUID()}`
    const created = Math.floor(Date.now() / 1000)
    const base = { id, object: 'chat.completion.chunk', created, model, system_fingerprint: null }
    const chunk = (delta: object, finish: string | null) => ({
      ...base,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    })
    if (body.stream === true) {
      return stream(reply, input, body.stream_options?.include_usage === true, {
        first: () => [chunk({ role: 'assistant', content: '' }, null)],
        delta: (text) => chunk({ content: text }, null),
        last: (r) => chunk({}, r.finishReason === 'length' ? 'length' : 'stop'),
        usage: (r) => ({ ...base, choices: [], usage: usage(r) }),
      })
    }
    const r = await run(reply, input)
    return {
      ...base,
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: r.text, refusal: null },
          logprobs: null,
          finish_reason: r.finishReason === 'length' ? 'length' : 'stop',
        },
      ],
      usage: usage(r),
    }
  })

  fastify.post('/v1/embeddings', async (request, reply) => {
    const body = parseBody(EmbeddingBody, request.body)
    if (await forwarded('/v1/embeddings', body.model, request, reply)) return reply
    const model = checkModel(body.model)
    const inputs = typeof body.input === 'string' ? [body.input] : body.input
    const r = await untilClientGoes(reply, (signal) => supervisor.embed(inputs, { signal }))
    const size = r.vectors[0]?.length ?? 0
    if (body.dimensions != null && body.dimensions !== size) {
      const msg = `this model's embeddings have ${size} dimensions; it cannot return ${body.dimensions}`
      throw new ApiError(400, 'invalid_request_error', 'invalid_request', msg, 'dimensions')
    }
    const base64 = body.encoding_format === 'base64'
    return {
      object: 'list',
      data: r.vectors.map((v, index) => ({
        object: 'embedding',
        index,
        embedding: base64 ? Buffer.from(Float32Array.from(v).buffer).toString('base64') : v,
      })),
      model,
      usage: { prompt_tokens: r.tokensIn, total_tokens: r.tokensIn },
    }
  })

  /** Runs a request, aborting it if the client goes away. */
  function run(reply: FastifyReply, input: GenerateInput, onText?: (t: string) => void) {
    return untilClientGoes(reply, (signal) => supervisor.generate(input, { signal, onText }))
  }

  /** Runs `work` with a signal aborted when the client disconnects; marks its errors as counted. */
  async function untilClientGoes<R>(reply: FastifyReply, work: (signal: AbortSignal) => Promise<R>): Promise<R> {
    const ac = new AbortController()
    const onClose = (): void => {
      if (!reply.raw.writableFinished) ac.abort()
    }
    reply.raw.on('close', onClose) // fires on client disconnect (or after a finished response)
    const forwarded = reply.request.headers[HEADER_FORWARDED]
    const peer = opts.forwardedSignal?.(typeof forwarded === 'string' ? forwarded : undefined)
    try {
      return await work(peer === undefined ? ac.signal : AbortSignal.any([ac.signal, peer]))
    } catch (err) {
      if (typeof err === 'object' && err !== null) counted.add(err)
      throw err
    } finally {
      reply.raw.off('close', onClose)
    }
  }

  interface StreamShape {
    first: () => object[]
    delta: (text: string) => object
    last: (r: GenerateResult) => object
    usage: (r: GenerateResult) => object
  }

  /** SSE: headers go out with the first chunk, so early failures still get their HTTP status. */
  async function stream(
    reply: FastifyReply,
    input: GenerateInput,
    includeUsage: boolean,
    shape: StreamShape,
  ): Promise<FastifyReply> {
    const res = reply.raw
    const send = (data: object | string): void => {
      if (!res.writableEnded) res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)
    }
    let started = false
    const start = (): void => {
      if (started) return
      started = true
      reply.hijack()
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      for (const c of shape.first()) send(c)
    }
    let result: GenerateResult
    try {
      result = await run(reply, input, (text) => {
        start()
        send(shape.delta(text))
      })
    } catch (err) {
      if (!started) throw err
      if (!(err instanceof RequestAbortedError)) send(errorBody(toApiError(err)))
      res.end()
      return reply
    }
    start()
    send(shape.last(result))
    if (includeUsage) send(shape.usage(result))
    send('[DONE]')
    res.end()
    return reply
  }
}

function usage(r: GenerateResult) {
  return { prompt_tokens: r.tokensIn, completion_tokens: r.tokensOut, total_tokens: r.tokensIn + r.tokensOut }
}
