/**
 * Reading an operator's probe file (`llmesh release publish --probes <file>`): JSON or YAML,
 * bounded before parsing (size, no aliases), then the ProbeSet schema (protocols/schemas/probes.ts).
 * Pure; refusals are InvalidInputError (ERR_INVALID_INPUT) naming the file and the field.
 *
 * File shape:
 *   id: smoke-en-1
 *   generation: { max_tokens: 32 }        # greedy always; ≤ 64
 *   probes:
 *     - prompt: "The capital of France is"
 *       reference: " Paris."               # expected output (scored by its tokens)
 *       reference_tokens: [3, 80, …]       # optional: the reference version's own greedy tokens
 */
import { parse } from 'yaml'
import { canonicalBytes, toBase64, tryFromBase64 } from './encoding.ts'
import { InvalidInputError } from './errors.ts'
import { MAX_PROBE_SET_BYTES, ProbeSet } from './schemas/probes.ts'

/** Largest probe file read (text with comments and formatting around a set of at most 64 KiB). */
export const MAX_PROBE_FILE_BYTES = 4 * MAX_PROBE_SET_BYTES

/** Parses and checks a probe file's text; returns the set in its canonical (defaults applied) form. */
export function parseProbeFile(text: string, filename = 'probes'): ProbeSet {
  if (new TextEncoder().encode(text).length > MAX_PROBE_FILE_BYTES) {
    throw new InvalidInputError(`${filename}: probe file over ${MAX_PROBE_FILE_BYTES} bytes`)
  }
  let raw: unknown
  try {
    // JSON is YAML; aliases are refused (no billion laughs)
    raw = parse(text, { maxAliasCount: 0, uniqueKeys: true })
  } catch (err) {
    throw new InvalidInputError(`${filename}: not JSON or YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  const r = ProbeSet.safeParse(raw)
  if (!r.success) {
    const i = r.error.issues[0]
    throw new InvalidInputError(`${filename}: ${i.path.join('.') || 'probe set'}: ${i.message}`)
  }
  return r.data
}

/** The set as it travels to the seed (`x-llmesh-probes`): base64 of its canonical JSON. */
export function encodeProbeHeader(set: ProbeSet): string {
  return toBase64(canonicalBytes(set))
}

/** Longest `x-llmesh-probes` header accepted (base64 of a maximal set). */
export const MAX_PROBE_HEADER = Math.ceil((MAX_PROBE_SET_BYTES * 4) / 3) + 4

/** Reads the `x-llmesh-probes` header; throws InvalidInputError. */
export function decodeProbeHeader(value: string): ProbeSet {
  if (value.length > MAX_PROBE_HEADER) throw new InvalidInputError('probe set is too large')
  const bytes = tryFromBase64(value)
  if (bytes === undefined) throw new InvalidInputError('x-llmesh-probes: not base64')
  return parseProbeFile(new TextDecoder().decode(bytes), 'x-llmesh-probes')
}
