/**
 * `llmesh model …`: make a tiny test model, inspect a GGUF header. Neither command loads weights:
 * inspect streams the header only, so it is safe on files llama.cpp would crash on.
 */
import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { type Command, InvalidArgumentError } from 'commander'
import type { GgufInfo, GgufProblem, GgufValue } from '../../node/model/gguf.ts'
import { action, CliError, print, UsageError } from '../output.ts'

/** Parses a non-negative integer option. */
function intArg(name: string): (v: string) => number {
  return (v) => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a non-negative integer`)
    return Number(v)
  }
}

/** Metadata made JSON-safe: bigints as strings, long arrays summarised. */
export function summarizeMetadata(metadata: Record<string, GgufValue>, maxArray = 16): Record<string, unknown> {
  const conv = (v: GgufValue): unknown => (typeof v === 'bigint' ? v.toString() : Array.isArray(v) ? v.map(conv) : v)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(metadata)) {
    out[k] =
      Array.isArray(v) && v.length > maxArray ? { length: v.length, first: v.slice(0, maxArray).map(conv) } : conv(v)
  }
  return out
}

/** The JSON printed by `model inspect --json`. */
export interface InspectReport {
  path: string
  ok: boolean
  problems: GgufProblem[]
  version?: number
  fileSize?: number
  architecture?: string
  contextLength?: number
  quantization?: string
  alignment?: number
  dataOffset?: number
  tensorCount?: number
  tensors?: Array<{ name: string; dims: number[]; type: string; offset: number; size: number | null }>
  metadata?: Record<string, unknown>
}

function report(path: string, info: GgufInfo | undefined, problems: GgufProblem[]): InspectReport {
  const r: InspectReport = { path, ok: problems.length === 0, problems }
  if (info === undefined) return r
  return {
    ...r,
    version: info.version,
    fileSize: info.fileSize,
    architecture: info.architecture,
    contextLength: info.contextLength,
    quantization: info.quantization,
    alignment: info.alignment,
    dataOffset: info.dataOffset,
    tensorCount: info.tensors.length,
    tensors: info.tensors.map((t) => ({
      name: t.name,
      dims: t.dims,
      type: t.typeName,
      offset: t.offset,
      size: t.size ?? null,
    })),
    metadata: summarizeMetadata(info.metadata),
  }
}

function human(r: InspectReport): string {
  const lines = [`${r.path}`]
  if (r.version !== undefined) {
    lines.push(
      `  GGUF v${r.version}, ${r.fileSize} bytes, architecture ${r.architecture ?? '(none)'}`,
      `  context length ${r.contextLength ?? '(none)'}, quantization ${r.quantization}, ${r.tensorCount} tensors`,
    )
  }
  lines.push(r.ok ? '  loadable: yes' : `  loadable: no (${r.problems.length} problem(s))`)
  for (const p of r.problems) lines.push(`  - ${p.code}: ${p.message}`)
  return lines.join('\n')
}

/** Options of `model make-tiny`. */
interface MakeTinyOptions {
  layers: number
  embd: number
  seed: number
  perturbLayer?: number
  json?: boolean
}

async function makeTiny(out: string, o: MakeTinyOptions): Promise<void> {
  if (o.perturbLayer !== undefined && o.perturbLayer >= o.layers) {
    throw new UsageError(`--perturb-layer ${o.perturbLayer} is not a layer (0..${o.layers - 1})`, 'ERR_INVALID_INPUT')
  }
  const { makeTinyGgufBuffer } = await import('../../node/model/gguf-writer.ts')
  let buf: Buffer
  try {
    buf = makeTinyGgufBuffer({ layers: o.layers, embd: o.embd, seed: o.seed, perturbLayer: o.perturbLayer })
  } catch (err) {
    throw new CliError((err as Error).message, 'ERR_INVALID_INPUT')
  }
  await writeFile(out, buf)
  const sha256 = createHash('sha256').update(buf).digest('hex')
  const { layers, embd, seed } = o
  const data = { path: out, bytes: buf.length, sha256, layers, embd, seed, perturbLayer: o.perturbLayer ?? null }
  print(o, data, (d) => `wrote ${d.path} (${d.bytes} bytes, sha256 ${d.sha256})`)
}

/** Adds `model make-tiny` and `model inspect` to the program. */
export function registerModelCommands(program: Command): void {
  const model = program.command('model').description('inspect GGUF models, make tiny test models')

  model
    .command('make-tiny')
    .description('write a tiny random llama GGUF (deterministic; for tests and demos, not for real use)')
    .argument('<out>', 'output .gguf path')
    .option('--layers <n>', 'transformer blocks', intArg('--layers'), 2)
    .option('--embd <n>', 'embedding width', intArg('--embd'), 64)
    .option('--seed <n>', 'weights seed', intArg('--seed'), 1)
    .option(
      '--perturb-layer <n>',
      're-seed only this layer (other tensors keep bytes and offsets)',
      intArg('--perturb-layer'),
    )
    .option('--json', 'print JSON')
    .action(action(makeTiny))

  model
    .command('inspect')
    .description('read a GGUF header (never the weights) and check that llama.cpp can load it')
    .argument('<file>', 'GGUF file')
    .option('--json', 'print JSON')
    .action(
      action(async (file: string, o: { json?: boolean }) => {
        const { inspectGguf } = await import('../../node/model/gguf.ts')
        const { info, problems } = await inspectGguf(file)
        if (info === undefined && problems[0]?.code === 'ERR_GGUF_IO')
          throw new CliError(problems[0].message, 'ERR_GGUF_IO')
        const r = report(file, info, problems)
        print(o, r, human)
        if (!r.ok) throw new CliError(`${file}: ${problems[0].message}`, problems[0].code)
      }),
    )
}
