import { LlmeshError } from '../../protocols/errors.ts'

/** Why a GGUF file is refused. Stable: tools and tests match on it. */
export type GgufErrorCode =
  | 'ERR_GGUF_BAD_MAGIC'
  | 'ERR_GGUF_UNSUPPORTED_VERSION'
  | 'ERR_GGUF_TRUNCATED'
  | 'ERR_GGUF_BAD_VALUE'
  | 'ERR_GGUF_TOO_LARGE'
  | 'ERR_GGUF_MISSING_KEY'
  | 'ERR_GGUF_BAD_TENSOR'
  | 'ERR_GGUF_UNSUPPORTED_ARCH'
  | 'ERR_GGUF_IO'

/** A GGUF file could not be read or is not loadable. */
export class GgufError extends LlmeshError {
  declare readonly code: GgufErrorCode
  constructor(code: GgufErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'GgufError'
  }
}

/** One thing wrong with a GGUF file, as returned by validation. */
export interface GgufProblem {
  code: GgufErrorCode
  message: string
  /** The metadata key concerned, if any. */
  key?: string
  /** The tensor concerned, if any. */
  tensor?: string
}

/** A GGUF file failed validation; `problems` lists every reason, `code` is the first one's. */
export class GgufValidationError extends GgufError {
  readonly problems: GgufProblem[]
  constructor(path: string, problems: GgufProblem[]) {
    const first = problems[0]
    const more = problems.length > 1 ? ` (+${problems.length - 1} more)` : ''
    super(first?.code ?? 'ERR_GGUF_BAD_VALUE', `${path}: ${first?.message ?? 'invalid GGUF'}${more}`)
    this.name = 'GgufValidationError'
    this.problems = problems
  }
}
