/**
 * The options of serving models: inference limits, the versions kept on disk and forwarding to
 * peers. Part of the one option table (node/config/options.ts spreads them in, in this order).
 */
import type { OptionSpec } from './option-spec.ts'

/** Inference limits and versions kept, in the order the docs show them (after `name`). */
export const SERVING_OPTIONS: readonly OptionSpec[] = [
  {
    name: 'inference_concurrency',
    flag: '--inference-concurrency <n>',
    env: 'LLMESH_INFERENCE_CONCURRENCY',
    key: 'inference_concurrency',
    kind: 'int',
    min: 1,
    default: () => 2,
    defaultText: '`2`',
    help: 'inference requests served at once (llama.cpp sequences)',
  },
  {
    name: 'inference_queue',
    flag: '--inference-queue <n>',
    env: 'LLMESH_INFERENCE_QUEUE',
    key: 'inference_queue',
    kind: 'int',
    min: 0,
    default: () => 16,
    defaultText: '`16`',
    help: 'inference requests waiting beyond those served (more: 503 with Retry-After)',
  },
  {
    name: 'inference_threads',
    flag: '--inference-threads <n>',
    env: 'LLMESH_INFERENCE_THREADS',
    key: 'inference_threads',
    kind: 'int',
    min: 1,
    defaultText: 'per model: 1 for tiny models, else all cores but one',
    help: 'llama.cpp threads',
  },
  {
    name: 'keep_versions',
    flag: '--keep-versions <n>',
    env: 'LLMESH_KEEP_VERSIONS',
    key: 'keep_versions',
    kind: 'int',
    min: 2,
    default: () => 3,
    defaultText: '`3`',
    help: 'versions of each model kept on disk (active and previous always kept)',
  },
]

/** Forwarding to peers that can serve a model (shown last, after the agent update's options). */
export const FORWARDING_OPTION: OptionSpec = {
  name: 'forwarding',
  flag: '--no-forwarding',
  env: 'LLMESH_FORWARDING',
  key: 'forwarding',
  kind: 'bool',
  default: () => true,
  defaultText: '`true`',
  help: 'serve OpenAI requests for models this device cannot serve through a peer that can, and serve peers’ forwarded requests',
}
