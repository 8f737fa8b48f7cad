/**
 * The federated serving frames (PROTOCOL_INFER, docs/protocol.md, "Federated serving"). Pure: the
 * node's forwarder and responder (node/serving/) read and write length-prefixed frames and decode
 * them here, size and JSON nesting checked on the raw bytes before `JSON.parse`, then the schema.
 *
 *   requester → server  InferRequest {v, path, model, body}          (one frame, then half-close)
 *   server → requester  InferHead    {status, content_type, …}       (one frame)
 *                       0x01 + body bytes                             (any number, each bounded)
 *                       0x00                                          (end: the body is complete)
 *
 * The body frames carry the server's HTTP response body as is (JSON, or Server-Sent Events for a
 * streamed request), so the requester relays them without re-encoding and streaming works end to
 * end. A stream that closes without the end frame is a truncated response.
 */
import * as z from 'zod'
import { jsonDepth } from './anti-entropy.ts'
import { LlmeshError } from './errors.ts'
import { ModelName, SemverString } from './schemas/common.ts'

/** Largest request frame, bytes: the API's body limit (1 MiB) plus the envelope. */
export const INFER_MAX_REQUEST_BYTES = 1024 * 1024 + 4096
/** Deepest JSON nesting of a request frame (`{body:{messages:[{…}]}}` is 4; stop lists 4). */
export const INFER_MAX_DEPTH = 8
/** Largest head frame, bytes. */
export const INFER_MAX_HEAD_BYTES = 4096
/** Largest body frame, bytes (tag byte included); bigger bodies are split. */
export const INFER_MAX_CHUNK_BYTES = 64 * 1024
/** Largest whole response body, bytes (256 embeddings of 4,096 floats as JSON fit). */
export const INFER_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
/** Tag byte of a body frame and of the end frame. */
export const INFER_TAG_DATA = 0x01
export const INFER_TAG_END = 0x00

/** The OpenAI routes a request may be forwarded to. */
export const INFER_PATHS = ['/v1/chat/completions', '/v1/completions', '/v1/embeddings'] as const
/** One of INFER_PATHS. */
export type InferPath = (typeof INFER_PATHS)[number]

/** What the requester asks: the OpenAI route and its JSON body, as the client sent them. */
export const InferRequest = z.object({
  v: z.literal(1),
  path: z.enum(INFER_PATHS),
  model: ModelName,
  body: z.record(z.string(), z.unknown()),
})
export type InferRequest = z.infer<typeof InferRequest>

/** The server's answer head: HTTP status and the headers the requester relays. */
export const InferHead = z.object({
  status: z.number().int().min(100).max(599),
  content_type: z.string().max(128),
  retry_after: z
    .string()
    .regex(/^\d{1,6}$/)
    .optional(),
  /** The model version the server served with (absent on errors before a model was chosen). */
  version: SemverString.optional(),
})
export type InferHead = z.infer<typeof InferHead>

/** Why a frame was refused. Stable codes. */
export type InferFrameCode = 'ERR_INFER_OVERSIZED' | 'ERR_INFER_FRAME'

/** A hostile or broken frame of PROTOCOL_INFER. */
export class InferFrameError extends LlmeshError {
  declare readonly code: InferFrameCode
  constructor(code: InferFrameCode, message: string) {
    super(code, message)
    this.name = 'InferFrameError'
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Decodes a JSON frame: size and nesting on the raw bytes, then UTF-8, JSON and the schema. Throws InferFrameError. */
function decodeJson<T>(bytes: Uint8Array, schema: z.ZodType<T>, maxBytes: number, what: string): T {
  if (bytes.byteLength > maxBytes) {
    throw new InferFrameError('ERR_INFER_OVERSIZED', `${what} frame of ${bytes.byteLength} bytes (at most ${maxBytes})`)
  }
  if (jsonDepth(bytes, INFER_MAX_DEPTH) > INFER_MAX_DEPTH) {
    throw new InferFrameError('ERR_INFER_FRAME', `${what} frame nested deeper than ${INFER_MAX_DEPTH}`)
  }
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new InferFrameError('ERR_INFER_FRAME', `${what} frame is not UTF-8 JSON`)
  }
  const r = schema.safeParse(json)
  if (!r.success) {
    const issue = r.error.issues[0]
    throw new InferFrameError('ERR_INFER_FRAME', `${what} frame: ${issue?.path.join('.')} ${issue?.message ?? ''}`)
  }
  return r.data
}

/** Encodes a request frame (throws ERR_INFER_OVERSIZED past INFER_MAX_REQUEST_BYTES). */
export function encodeInferRequest(req: InferRequest): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(req))
  if (bytes.byteLength > INFER_MAX_REQUEST_BYTES) {
    throw new InferFrameError('ERR_INFER_OVERSIZED', `request of ${bytes.byteLength} bytes`)
  }
  return bytes
}

/** Decodes a request frame. Throws InferFrameError. */
export function decodeInferRequest(bytes: Uint8Array): InferRequest {
  return decodeJson(bytes, InferRequest, INFER_MAX_REQUEST_BYTES, 'request')
}

/** Encodes a head frame. */
export function encodeInferHead(head: InferHead): Uint8Array {
  return encoder.encode(JSON.stringify(head))
}

/** Decodes a head frame. Throws InferFrameError. */
export function decodeInferHead(bytes: Uint8Array): InferHead {
  return decodeJson(bytes, InferHead, INFER_MAX_HEAD_BYTES, 'head')
}

/** Splits body bytes into data frames of at most INFER_MAX_CHUNK_BYTES each. */
export function dataFrames(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  const room = INFER_MAX_CHUNK_BYTES - 1
  for (let i = 0; i < bytes.byteLength; i += room) {
    const part = bytes.subarray(i, Math.min(i + room, bytes.byteLength))
    const f = new Uint8Array(part.byteLength + 1)
    f[0] = INFER_TAG_DATA
    f.set(part, 1)
    out.push(f)
  }
  return out
}

/** The end frame. */
export const END_FRAME: Uint8Array = Uint8Array.of(INFER_TAG_END)

/** A decoded body frame: bytes of the body, or its end. */
export type BodyFrame = { end: false; data: Uint8Array } | { end: true }

/**
 * Decodes a body frame. `received` is the body's size so far: past INFER_MAX_RESPONSE_BYTES the
 * response is refused. Throws InferFrameError.
 */
export function decodeBodyFrame(bytes: Uint8Array, received: number): BodyFrame {
  if (bytes.byteLength > INFER_MAX_CHUNK_BYTES) {
    throw new InferFrameError('ERR_INFER_OVERSIZED', `body frame of ${bytes.byteLength} bytes`)
  }
  if (bytes.byteLength === 1 && bytes[0] === INFER_TAG_END) return { end: true }
  if (bytes.byteLength < 2 || bytes[0] !== INFER_TAG_DATA) {
    throw new InferFrameError('ERR_INFER_FRAME', 'body frame with an unknown tag')
  }
  if (received + bytes.byteLength - 1 > INFER_MAX_RESPONSE_BYTES) {
    throw new InferFrameError('ERR_INFER_OVERSIZED', `response body over ${INFER_MAX_RESPONSE_BYTES} bytes`)
  }
  return { end: false, data: bytes.subarray(1) }
}
