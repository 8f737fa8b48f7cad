/**
 * The anti-entropy wire frames (PROTOCOL_ANTI_ENTROPY, docs/protocol.md, "Anti-entropy") and
 * their limits. Pure: the node's exchange (node/mesh/anti-entropy.ts) reads length-prefixed
 * frames and decodes every control frame with `decodeFrame`, which checks size and JSON nesting on
 * the raw bytes before `JSON.parse` ever runs, then the schema.
 *
 *   initiator → responder  HaveFrame  {have: [id…], hello?}
 *   responder → initiator  WantFrame  {want: [id…], count: n, hello?} + n message frames
 *   initiator → responder  CountFrame {count: m}                     + m message frames
 */
import * as z from 'zod'
import { VerificationError } from './errors.ts'
import { CpuArch, Sha256Hex, Tag } from './schemas/common.ts'

/** Most ids in a `have` or `want` list. */
export const ANTI_ENTROPY_MAX_DIGESTS = 20_000
/** Most message frames announced by one `count`. */
export const ANTI_ENTROPY_MAX_MESSAGES = 2_000
/**
 * Largest control frame in bytes: a full id list (20,000 × 67 bytes: 64 hex digits, quotes, comma)
 * plus a hello and the frame's keys. Checked before the bytes are parsed.
 */
export const ANTI_ENTROPY_MAX_CONTROL_BYTES = ANTI_ENTROPY_MAX_DIGESTS * 67 + 16 * 1024
/** Deepest JSON nesting of a control frame (a hello's capabilities sit at depth 3). */
export const ANTI_ENTROPY_MAX_DEPTH = 4

/**
 * What a peer says about itself in each round: tags and capabilities as the device reports them
 * (authenticated only by the connection's peer id). The seed enrolls devices from it.
 */
export const Hello = z.object({
  role: z.enum(['node', 'seed']),
  /** A name for people (`--name`, default the host name); older nodes send none. Never used for decisions. */
  name: z.string().min(1).max(64).optional(),
  tags: z.array(Tag).max(32),
  capabilities: z.object({
    arch: CpuArch,
    ram_mb: z.number().int().nonnegative(),
    accelerator: z.string().max(64).optional(),
    device_type: z.string().max(64),
  }),
})
export type Hello = z.infer<typeof Hello>

/** The initiator's ids. */
export const HaveFrame = z.object({
  have: z.array(Sha256Hex).max(ANTI_ENTROPY_MAX_DIGESTS),
  hello: Hello.optional(),
})
export type HaveFrame = z.infer<typeof HaveFrame>

/** The ids the responder lacks, and how many message frames follow. */
export const WantFrame = z.object({
  want: z.array(Sha256Hex).max(ANTI_ENTROPY_MAX_DIGESTS),
  count: z.number().int().nonnegative().max(ANTI_ENTROPY_MAX_MESSAGES),
  hello: Hello.optional(),
})
export type WantFrame = z.infer<typeof WantFrame>

/** How many message frames follow. */
export const CountFrame = z.object({ count: z.number().int().nonnegative().max(ANTI_ENTROPY_MAX_MESSAGES) })
export type CountFrame = z.infer<typeof CountFrame>

/** Outcome of decoding a control frame: never a throw. */
export type FrameResult<T> = { ok: true; value: T } | { ok: false; error: VerificationError }

const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d
const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * Deepest nesting of `{`/`[` in JSON text (strings skipped), scanning at most until it passes
 * `max` (then `max + 1`). Linear, no allocation: run before `JSON.parse`.
 */
export function jsonDepth(bytes: Uint8Array, max = Number.POSITIVE_INFINITY): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]
    if (inString) {
      if (b === BACKSLASH) i++
      else if (b === QUOTE) inString = false
      continue
    }
    if (b === QUOTE) inString = true
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      depth++
      if (depth > deepest) deepest = depth
      if (deepest > max) return deepest
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--
  }
  return deepest
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Decodes a control frame: size (`ERR_OVERSIZED`) and nesting (`ERR_SCHEMA`) on the raw bytes,
 * then UTF-8, JSON and the schema (`ERR_SCHEMA`).
 */
export function decodeFrame<T>(bytes: Uint8Array, schema: z.ZodType<T>): FrameResult<T> {
  if (bytes.byteLength > ANTI_ENTROPY_MAX_CONTROL_BYTES) {
    const msg = `control frame of ${bytes.byteLength} bytes (at most ${ANTI_ENTROPY_MAX_CONTROL_BYTES})`
    return { ok: false, error: new VerificationError('ERR_OVERSIZED', msg) }
  }
  if (jsonDepth(bytes, ANTI_ENTROPY_MAX_DEPTH) > ANTI_ENTROPY_MAX_DEPTH) {
    const msg = `control frame nested deeper than ${ANTI_ENTROPY_MAX_DEPTH}`
    return { ok: false, error: new VerificationError('ERR_SCHEMA', msg) }
  }
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(bytes))
  } catch {
    return { ok: false, error: new VerificationError('ERR_SCHEMA', 'control frame is not UTF-8 JSON') }
  }
  const r = schema.safeParse(json)
  if (!r.success) {
    const msg = `control frame: ${r.error.issues[0]?.message ?? 'invalid'}`
    return { ok: false, error: new VerificationError('ERR_SCHEMA', msg) }
  }
  return { ok: true, value: r.data }
}
