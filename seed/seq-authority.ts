/**
 * The operator's sequence authority: the seq of a release is allocated only by the holder of the
 * operator key, from a durable counter kept next to that key (docs/protocol.md, "One sequence
 * authority").
 *
 * How it works: `release-seq.json` in the fleet directory (beside `operator.key`) holds, per
 * model, the highest seq this key's holder ever allocated. A publish takes
 * `max(counter, highest seq the node's store has seen) + 1` and `reserve`s it, which writes the
 * counter durably (temp file, fsync, rename, directory fsync) BEFORE the manifest is signed: a
 * crash after signing never hands the same seq out again, and a seed whose data directory was
 * lost, or restored from an older backup, does not reuse a seq it already signed. A seq reserved
 * by a publish that failed later is simply skipped (seqs must grow, not be dense).
 *
 * What it cannot prevent (two machines holding copies of one fleet directory, publishing while
 * apart) every node detects: two valid manifests with one model and seq naming different versions
 * make both `conflicted` everywhere (protocols/rollout/conflicts.ts).
 *
 * The file is input like any other: bounded in size, parsed with zod; a file that does not parse
 * refuses every publish with `ERR_SEQ_AUTHORITY` (never silently reset to 0).
 */
import { readFileSync, statSync } from 'node:fs'
import * as z from 'zod'
import { writeFileDurable } from '../node/durable-file.ts'
import { LlmeshError } from '../protocols/errors.ts'
import { MAX_SEQ_FILE_BYTES } from './constants.ts'

/** The counter file cannot be read or written: publishing is refused until the operator mends it. */
export class SeqAuthorityError extends LlmeshError {
  declare readonly code: 'ERR_SEQ_AUTHORITY'
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SEQ_AUTHORITY', message, options)
    this.name = 'SeqAuthorityError'
  }
}

const SeqFile = z.object({ v: z.literal(1), seq: z.record(z.string().max(256), z.number().int().nonnegative()) })
type SeqFile = z.infer<typeof SeqFile>

/** Where the counter lives. */
export interface SeqAuthorityInit {
  /** Path of the counter file (`<fleet dir>/release-seq.json`). */
  file: string
}

/** Allocates release seqs from a durable counter; see the header. */
export class SeqAuthority {
  private readonly file: string
  private state: SeqFile | undefined
  private error: SeqAuthorityError | undefined
  private chain: Promise<unknown> = Promise.resolve()

  constructor(init: SeqAuthorityInit) {
    this.file = init.file
    try {
      this.state = load(init.file)
    } catch (err) {
      this.error =
        err instanceof SeqAuthorityError
          ? err
          : new SeqAuthorityError(`cannot read the release seq counter ${init.file}`, { cause: err })
    }
  }

  /** The next seq for `key`, given the highest seq the node has seen for it. Throws if the counter is unusable. */
  next(key: string, highestSeen: number): number {
    if (this.error !== undefined) throw this.error
    return Math.max(this.state?.seq[key] ?? 0, highestSeen) + 1
  }

  /** Records `seq` as allocated for `key`, durably, before anything is signed with it. Serialized. */
  reserve(key: string, seq: number): Promise<void> {
    const run = this.chain
      .catch(() => {})
      .then(async () => {
        if (this.error !== undefined) throw this.error
        const cur = this.state ?? { v: 1 as const, seq: {} }
        if ((cur.seq[key] ?? 0) >= seq) return
        const next: SeqFile = { v: 1, seq: { ...cur.seq, [key]: seq } }
        try {
          await writeFileDurable(this.file, `${JSON.stringify(next, null, 2)}\n`)
        } catch (err) {
          throw new SeqAuthorityError(`cannot write the release seq counter ${this.file}: ${(err as Error).message}`, {
            cause: err,
          })
        }
        this.state = next
      })
    this.chain = run
    return run
  }
}

function load(file: string): SeqFile | undefined {
  let size: number
  try {
    size = statSync(file).size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if (size > MAX_SEQ_FILE_BYTES) {
    throw new SeqAuthorityError(`${file} is ${size} bytes, over ${MAX_SEQ_FILE_BYTES}: not a release seq counter`)
  }
  let json: unknown
  try {
    json = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new SeqAuthorityError(`${file} is not valid JSON: mend or remove it (see docs/runbook.md)`, { cause: err })
  }
  const parsed = SeqFile.safeParse(json)
  if (!parsed.success) {
    throw new SeqAuthorityError(`${file} is not a release seq counter: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
  }
  return parsed.data
}
