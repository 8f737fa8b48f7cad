/**
 * Quality probes carried with a release (issue #18): a small, bounded set of prompts with the
 * reference output the model should produce, run by devices when idle, scored greedily (teacher
 * forced: at each reference token, does the candidate's most likely next token agree, and what
 * log-likelihood does it give the reference token). The set travels inline in the signed manifest
 * (`ReleaseManifest.probes`), named by `provenance.validation_dataset` { id, digest }, where
 * digest = sha256 of the set's canonical JSON (`probeSetDigest`). Bounds keep it under
 * MAX_PROBE_SET_BYTES, so a manifest stays far below its 4 MiB limit.
 */
import * as z from 'zod'
import { canonicalBytes, sha256Hex } from '../encoding.ts'
import { ModelName, SemverString, Sha256Hex } from './common.ts'

/** Most probes in a set. */
export const MAX_PROBES = 32
/** Longest prompt or reference text, UTF-8 bytes. */
export const MAX_PROBE_TEXT_BYTES = 2048
/** Most reference tokens scored per probe (and generation max_tokens). */
export const MAX_PROBE_TOKENS = 64
/** Largest probe set, bytes of its canonical JSON (the manifest carries it inline). */
export const MAX_PROBE_SET_BYTES = 64 * 1024

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length
const ProbeText = z
  .string()
  .max(MAX_PROBE_TEXT_BYTES)
  .refine((s) => utf8Bytes(s) <= MAX_PROBE_TEXT_BYTES, `at most ${MAX_PROBE_TEXT_BYTES} bytes of UTF-8`)

/** One probe: a prompt (completion mode) and the output the model is expected to give. */
export const Probe = z
  .object({
    prompt: ProbeText.refine((s) => s.length > 0, 'prompt is empty'),
    /** Expected output text (scored by its tokens when `reference_tokens` is absent). */
    reference: ProbeText,
    /**
     * The reference version's own greedy output tokens (token ids of this model lineage's
     * vocabulary), when the publisher produced the references by running it: scored exactly, no
     * re-tokenization of text (which loses bytes that are no complete UTF-8 character).
     */
    reference_tokens: z.array(z.number().int().nonnegative().max(0x7fffffff)).min(1).max(MAX_PROBE_TOKENS).optional(),
  })
  .strict()
export type Probe = z.infer<typeof Probe>

/** A release's probe set. */
export const ProbeSet = z
  .object({
    /** Human name of the validation set, e.g. `smoke-en-2026-12`. */
    id: z.string().min(1).max(128),
    generation: z
      .object({
        /** Probes are scored greedily (the only mode: results are deterministic per build). */
        greedy: z.literal(true).default(true),
        /** Reference tokens scored per probe, at most. */
        max_tokens: z.number().int().min(1).max(MAX_PROBE_TOKENS).default(32),
      })
      .strict()
      .default({ greedy: true, max_tokens: 32 }),
    probes: z.array(Probe).min(1).max(MAX_PROBES),
  })
  .strict()
  .refine((s) => canonicalBytes(s).length <= MAX_PROBE_SET_BYTES, `probe set over ${MAX_PROBE_SET_BYTES} bytes`)
export type ProbeSet = z.infer<typeof ProbeSet>

/** sha256 of the probe set's canonical JSON: `provenance.validation_dataset.digest`. */
export function probeSetDigest(set: ProbeSet): string {
  return sha256Hex(canonicalBytes(set))
}

/**
 * A device's figures for one probe set on one model version, from its latest complete pass
 * (greedy results are deterministic, so a pass is not a sample: it is the build's answer). Sums,
 * so figures of several devices add up: agreement = agreed / tokens, mean negative log-likelihood
 * = nll / tokens, perplexity = exp(nll / tokens).
 */
export const QualityFigure = z
  .object({
    model: ModelName,
    version: SemverString,
    /** `probeSetDigest` of the set run (it may be a newer release's set run on this version: a baseline). */
    probe_set: Sha256Hex,
    /** Probes scored. */
    probes: z.number().int().nonnegative().max(MAX_PROBES),
    /** Reference tokens scored. */
    tokens: z
      .number()
      .int()
      .nonnegative()
      .max(MAX_PROBES * MAX_PROBE_TOKENS),
    /** Of those, how many were the candidate's greedy (most likely) next token. */
    agreed: z
      .number()
      .int()
      .nonnegative()
      .max(MAX_PROBES * MAX_PROBE_TOKENS),
    /** Sum over scored tokens of −ln p(reference token), nats. */
    nll: z
      .number()
      .nonnegative()
      .max(MAX_PROBES * MAX_PROBE_TOKENS * 100),
  })
  .strict()
  .refine((q) => q.agreed <= q.tokens, 'agreed exceeds tokens')
export type QualityFigure = z.infer<typeof QualityFigure>
