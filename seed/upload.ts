/**
 * Spooling an upload to disk for publishing. The stream is bounded in size, and its first bytes
 * are checked as they arrive: a body that does not start with the GGUF magic and a supported
 * version is refused before it is written to disk (and long before the whole file has crossed
 * the network; `check` replaces the GGUF check for other uploads, e.g. agent packages). Errors name the upload as the client called it, never the spool path.
 */
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { type Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { GGUF_MAGIC, GGUF_SUPPORTED_VERSIONS } from '../node/model/constants.ts'
import { GgufError } from '../node/model/gguf.ts'
import { InvalidInputError, LlmeshError } from '../protocols/errors.ts'

/** Bytes of a GGUF file's fixed start: magic (u32 LE) and version (u32 LE). */
const HEADER_BYTES = 8

/** The upload is larger than the seed accepts. */
export class UploadTooLargeError extends LlmeshError {
  constructor(max: number) {
    super('ERR_UPLOAD_TOO_LARGE', `upload exceeds ${max} bytes`)
    this.name = 'UploadTooLargeError'
  }
}

/** Refuses `head` (the first 8 bytes) unless it starts a GGUF file llama.cpp reads. */
export function checkGgufStart(head: Uint8Array, name: string): void {
  if (head.byteLength < HEADER_BYTES) {
    throw new GgufError('ERR_GGUF_BAD_MAGIC', `${name}: not a GGUF file (${head.byteLength} bytes)`)
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength)
  const magic = view.getUint32(0, true)
  if (magic !== GGUF_MAGIC) {
    throw new GgufError('ERR_GGUF_BAD_MAGIC', `${name}: not a GGUF file (magic 0x${magic.toString(16)})`)
  }
  const version = view.getUint32(4, true)
  if (!GGUF_SUPPORTED_VERSIONS.includes(version)) {
    throw new GgufError('ERR_GGUF_UNSUPPORTED_VERSION', `${name}: GGUF version ${version}`)
  }
}

/**
 * Writes `body` to `file`, refusing a non-GGUF start as soon as 8 bytes have arrived (nothing is
 * written then) and anything over `maxBytes`. Returns the byte count.
 */
export async function spoolUpload(
  body: NodeJS.ReadableStream,
  file: string,
  opts: { maxBytes: number; name: string; check?: (head: Uint8Array, name: string) => void },
): Promise<number> {
  const check = opts.check ?? checkGgufStart
  let bytes = 0
  let head: Buffer | undefined = Buffer.alloc(0)
  const guard = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.byteLength
      if (bytes > opts.maxBytes) return cb(new UploadTooLargeError(opts.maxBytes))
      if (head === undefined) return cb(null, chunk)
      head = Buffer.concat([head, chunk])
      if (head.byteLength < HEADER_BYTES) return cb()
      try {
        check(head, opts.name)
      } catch (err) {
        return cb(err as Error)
      }
      const all = head
      head = undefined
      cb(null, all)
    },
    flush(cb) {
      if (head === undefined) return cb()
      try {
        check(head, opts.name)
        cb()
      } catch (err) {
        cb(err as Error)
      }
    },
  })
  // body → guard by hand: a refusal must not destroy the request (that would reset the
  // connection before the client reads the reply); the rest of the body is drained instead.
  const src = body as Readable
  const onError = (err: Error) => guard.destroy(err)
  const onClose = () => {
    if (!src.readableEnded) guard.destroy(new InvalidInputError(`${opts.name}: upload aborted`))
  }
  src.on('error', onError)
  src.on('close', onClose)
  src.pipe(guard)
  const out = createWriteStream(file)
  try {
    await pipeline(guard, out)
    return bytes
  } catch (err) {
    src.unpipe(guard)
    drain(src, opts.maxBytes)
    // the file is opened asynchronously: let it close, so the caller's cleanup removes it for good
    if (!out.closed) await once(out, 'close').catch(() => {})
    throw err
  } finally {
    src.off('error', onError)
    src.off('close', onClose)
  }
}

/**
 * Reads and discards the rest of a refused body, so the reply reaches a client that is still
 * sending (fetch and curl read the reply only once their body is sent; cutting the connection
 * loses it). Nothing is written; past `max` bytes (the upload limit) the connection is cut.
 */
function drain(src: Readable, max: number): void {
  if (src.readableEnded || src.destroyed) return
  let n = 0
  src.on('error', () => {})
  src.on('data', (d: Buffer) => {
    n += d.byteLength
    if (n > max) src.destroy()
  })
  src.resume()
}
