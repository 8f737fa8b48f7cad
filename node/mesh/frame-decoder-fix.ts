/**
 * libp2p's length-prefixed frame decoder without an exception per read.
 *
 * `LengthPrefixedDecoder.decode` (@libp2p/utils 7, what @chainsafe/libp2p-noise decodes every
 * encrypted frame of a connection with) loops until its length decoder throws a RangeError for
 * "not enough bytes". Every read that ends on a frame boundary (the usual case) ends with the
 * buffer empty, so every read of every connection constructs, throws and catches one RangeError
 * with its stack trace: ≈ 3.5 µs of a ≈ 3.8 µs decode of one small frame (a loop of 200,000 here),
 * and ≈ 2.6 % of a daemon's CPU samples in a five-node LAN test (docs/benchmarks.md).
 *
 * Each decoder's length decoder is wrapped so that an empty buffer answers length 0 instead of
 * throwing: the loop then needs `encodingLength(0)` ≥ 1 bytes, has 0, and stops exactly where the
 * exception stopped it, without one. Only decoders whose encoding length of 0 is at least 1 (the
 * 2-byte noise prefix, varints) are wrapped; any other keeps the upstream behaviour. A buffer with
 * some bytes goes to the original decoder, which decides as before.
 *
 * Importing this module applies it once (node/mesh/host.ts imports it).
 */
import { LengthPrefixedDecoder } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'

type LengthDecoder = (data: Uint8ArrayList | Uint8Array) => number

interface DecoderInternals {
  lengthDecoder: LengthDecoder
  encodingLength: (length: number) => number
  /** Set once this instance's length decoder was looked at (wrapped or left as it is). */
  __llmeshGuarded?: true
}

type DecoderProto = { decode: (buf: Uint8ArrayList | Uint8Array) => Generator<Uint8ArrayList> } & {
  /** Set on the prototype once patched (a name of its own: instances inherit the prototype's properties). */
  __llmeshDecodePatched?: true
}

/** `decoder`'s length decoder, made to answer 0 for an empty buffer where that ends the loop. */
export function guardLengthDecoder(decoder: DecoderInternals): void {
  if (decoder.__llmeshGuarded === true) return
  decoder.__llmeshGuarded = true
  if (!(decoder.encodingLength(0) >= 1)) return // a 0 would then be a complete empty frame: loop forever
  const inner = decoder.lengthDecoder
  decoder.lengthDecoder = (data) => (data.byteLength === 0 ? 0 : inner(data))
}

const proto = LengthPrefixedDecoder.prototype as unknown as DecoderProto
if (proto.__llmeshDecodePatched !== true) {
  const decode = proto.decode
  proto.decode = function guardedDecode(this: DecoderInternals, buf) {
    if (this.__llmeshGuarded !== true) guardLengthDecoder(this)
    return decode.call(this, buf)
  }
  proto.__llmeshDecodePatched = true
}
