/**
 * Request bodies of the OpenAI-compatible API (the subset llmesh serves) and their conversion to
 * supervisor requests. Unknown fields are ignored, as OpenAI clients send many.
 */
import * as z from 'zod'
import { DEFAULT_CHAT_MAX_TOKENS, DEFAULT_COMPLETION_MAX_TOKENS, MAX_EMBEDDING_INPUTS } from './constants.ts'
import type { GenerateInput } from './types.ts'

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish()
const common = {
  model: z.string().optional(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  stop,
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  n: z.literal(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
}

/** POST /v1/completions body. */
export const CompletionBody = z.object({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).length(1)]),
})
export type CompletionBody = z.infer<typeof CompletionBody>

const textPart = z.object({ type: z.literal('text'), text: z.string() })
const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(textPart)]).nullable(),
})

/** POST /v1/chat/completions body. */
export const ChatBody = z.object({
  ...common,
  max_completion_tokens: z.number().int().min(1).nullish(),
  messages: z.array(message).min(1),
})
export type ChatBody = z.infer<typeof ChatBody>

const embeddingText = z.string().min(1, 'an input must not be empty')

/**
 * POST /v1/embeddings body. Input is a string or an array of strings; OpenAI's token-array forms
 * are refused (the tokens of another model's tokenizer mean nothing to this one).
 */
export const EmbeddingBody = z.object({
  model: z.string().optional(),
  input: z.union([
    embeddingText,
    z
      .array(embeddingText)
      .min(1, 'input must not be empty')
      .max(MAX_EMBEDDING_INPUTS, `at most ${MAX_EMBEDDING_INPUTS} inputs per request`),
  ]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).nullish(),
  user: z.string().optional(),
})
export type EmbeddingBody = z.infer<typeof EmbeddingBody>

/** A request body that did not validate; `param` names the offending field. */
export class InvalidBodyError extends Error {
  readonly param: string | null
  constructor(message: string, param: string | null) {
    super(message)
    this.name = 'InvalidBodyError'
    this.param = param
  }
}

/** Validates `body` against `schema`, throwing InvalidBodyError with the first issue. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body ?? {})
  if (r.success) return r.data
  const issue = r.error.issues[0]
  const param = issue?.path.length ? issue.path.join('.') : null
  throw new InvalidBodyError(`${param ?? 'body'}: ${issue?.message ?? 'invalid'}`, param)
}

const stops = (s: string | string[] | null | undefined): string[] | undefined =>
  s == null ? undefined : Array.isArray(s) ? s : [s]

/** Supervisor request for a completion. */
export function completionInput(b: CompletionBody): GenerateInput {
  return {
    mode: 'completion',
    prompt: Array.isArray(b.prompt) ? b.prompt[0] : b.prompt,
    maxTokens: b.max_tokens ?? DEFAULT_COMPLETION_MAX_TOKENS,
    temperature: b.temperature ?? undefined,
    topP: b.top_p ?? undefined,
    seed: b.seed ?? undefined,
    stop: stops(b.stop),
  }
}

/** Supervisor request for a chat completion. */
export function chatInput(b: ChatBody): GenerateInput {
  return {
    mode: 'chat',
    messages: b.messages.map((m) => ({
      role: m.role === 'developer' ? 'system' : m.role,
      content:
        m.content == null ? '' : typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
    })),
    maxTokens: b.max_completion_tokens ?? b.max_tokens ?? DEFAULT_CHAT_MAX_TOKENS,
    temperature: b.temperature ?? undefined,
    topP: b.top_p ?? undefined,
    seed: b.seed ?? undefined,
    stop: stops(b.stop),
  }
}
