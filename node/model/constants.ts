/** Defaults of the GGUF header reader (node/model). */

/** "GGUF" read as a little-endian uint32. */
export const GGUF_MAGIC = 0x46554747
/** GGUF versions this reader understands (v1 used 32-bit counts and is long gone). */
export const GGUF_SUPPORTED_VERSIONS: readonly number[] = [2, 3]
/** Alignment of tensor data when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32
/** Bytes read from disk at a time while walking the header. */
export const GGUF_READ_CHUNK_BYTES = 256 * 1024
/** The header (metadata + tensor infos) is never allowed to be larger than this. */
export const GGUF_MAX_HEADER_BYTES = 512 * 1024 * 1024
/** Longest string accepted in the header (keys, values, tensor names). */
export const GGUF_MAX_STRING_BYTES = 16 * 1024 * 1024
/** Most elements accepted in one metadata array (vocabularies are ~300k entries at most). */
export const GGUF_MAX_ARRAY_LENGTH = 16 * 1024 * 1024
/** Most metadata entries or tensors accepted. */
export const GGUF_MAX_COUNT = 1024 * 1024
/** ggml tensors have at most 4 dimensions. */
export const GGML_MAX_DIMS = 4
