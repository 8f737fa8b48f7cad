/** The shapes of a GGUF header, shared by the reader (gguf.ts) and the checks (validate.ts). */

/** A metadata value. 64-bit integers are numbers when safe, bigint otherwise. */
export type GgufValue = number | bigint | string | boolean | GgufValue[]

/** One tensor as described in the header. */
export interface GgufTensorInfo {
  name: string
  /** Dimensions, row length first (ggml order). */
  dims: number[]
  /** ggml type id. */
  type: number
  /** ggml type name, e.g. 'F32', 'Q4_K'. */
  typeName: string
  /** Offset relative to the start of the tensor data section. */
  offset: number
  /** Size in bytes, undefined when the type is unknown or the shape does not fit its blocks. */
  size: number | undefined
}

/** What the header of a GGUF file says. */
export interface GgufInfo {
  path: string
  /** GGUF format version (2 or 3). */
  version: number
  fileSize: number
  /** `general.architecture`, undefined when absent. */
  architecture: string | undefined
  /** `<arch>.context_length` (trained context), undefined when absent. */
  contextLength: number | undefined
  /** Quantization, from `general.file_type` or else the dominant tensor type, e.g. 'F32', 'Q4_K_M'. */
  quantization: string
  /** Tensor data alignment (`general.alignment`, default 32). */
  alignment: number
  /** File offset where the tensor data section starts. */
  dataOffset: number
  /** Bytes the tensor data needs (end of the last tensor), when all tensor sizes are known. */
  tensorDataBytes: number | undefined
  tensors: GgufTensorInfo[]
  metadata: Record<string, GgufValue>
}
