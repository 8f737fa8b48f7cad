/**
 * Anti-entropy control frames (protocols/anti-entropy.ts): size and nesting are refused on the
 * raw bytes before JSON.parse, and no input makes the decoder throw (fast-check, 1,000 runs each).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  ANTI_ENTROPY_MAX_CONTROL_BYTES,
  ANTI_ENTROPY_MAX_DIGESTS,
  CountFrame,
  decodeFrame,
  HaveFrame,
  jsonDepth,
  WantFrame,
} from '../../protocols/anti-entropy.ts'
import { VerificationError } from '../../protocols/errors.ts'

const enc = new TextEncoder()
const bytes = (v: unknown) => enc.encode(JSON.stringify(v))
const hex = (i: number) => i.toString(16).padStart(64, '0')
const hello = { role: 'node', tags: ['pilot'], capabilities: { arch: 'arm64', ram_mb: 4096, device_type: 'rpi5' } }

describe('anti-entropy frames', () => {
  test('valid frames decode, a full have list with a hello fits the control frame limit', () => {
    const have = Array.from({ length: ANTI_ENTROPY_MAX_DIGESTS }, (_, i) => hex(i))
    const full = bytes({ have, hello })
    assert.ok(full.byteLength <= ANTI_ENTROPY_MAX_CONTROL_BYTES, `${full.byteLength}`)
    const r = decodeFrame(full, HaveFrame)
    assert.equal(r.ok, true)
    assert.deepEqual(decodeFrame(bytes({ want: [hex(1)], count: 3 }), WantFrame), {
      ok: true,
      value: { want: [hex(1)], count: 3 },
    })
    assert.deepEqual(decodeFrame(bytes({ count: 0 }), CountFrame), { ok: true, value: { count: 0 } })
  })

  test('an oversized frame is ERR_OVERSIZED before parsing; a nesting bomb is ERR_SCHEMA before parsing', () => {
    const junk = new Uint8Array(Math.round(2.75 * 1024 * 1024)).fill(0x20)
    let t = performance.now()
    const big = decodeFrame(junk, HaveFrame)
    assert.equal(big.ok ? '' : big.error.code, 'ERR_OVERSIZED')
    assert.ok(performance.now() - t < 50, 'no parse of the junk')
    // 1 MB of '[' (within the size limit): refused by the depth scan, which stops at depth 5
    const bomb = new Uint8Array(1_000_000).fill(0x5b)
    t = performance.now()
    const deep = decodeFrame(bomb, HaveFrame)
    assert.equal(deep.ok ? '' : deep.error.code, 'ERR_SCHEMA')
    assert.ok(performance.now() - t < 50, 'the scan stops early')
    assert.equal(jsonDepth(enc.encode('{"a":"[[[[[[[[","b":[{"c":[]}]}')), 4, 'brackets in strings do not count')
    assert.equal(jsonDepth(enc.encode('{"a":"\\"[[[[","b":1}')), 1, 'escaped quotes stay in the string')
  })

  test('schema violations are ERR_SCHEMA: too many ids, a bad id, a count past the limit', () => {
    const many = { have: Array.from({ length: ANTI_ENTROPY_MAX_DIGESTS + 1 }, (_, i) => hex(i)) }
    for (const [frame, schema] of [
      [many, HaveFrame],
      [{ have: ['zz'] }, HaveFrame],
      [{ want: [], count: 2001 }, WantFrame],
      [{ count: -1 }, CountFrame],
      [{ count: 1.5 }, CountFrame],
    ] as const) {
      const r = decodeFrame(bytes(frame), schema as typeof HaveFrame)
      assert.equal(r.ok ? '' : r.error.code, 'ERR_SCHEMA')
    }
    const bad = decodeFrame(new Uint8Array([0x7b, 0xff, 0x7d]), CountFrame)
    assert.equal(bad.ok ? '' : bad.error.code, 'ERR_SCHEMA', 'invalid UTF-8')
  })

  test('property: no byte string makes a decoder throw; every refusal is a typed VerificationError', () => {
    const typed = (r: ReturnType<typeof decodeFrame>) =>
      r.ok || (r.error instanceof VerificationError && ['ERR_SCHEMA', 'ERR_OVERSIZED'].includes(r.error.code))
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => {
        for (const s of [HaveFrame, WantFrame, CountFrame]) assert.ok(typed(decodeFrame(b, s as typeof HaveFrame)))
      }),
      { numRuns: 1000 },
    )
    // JSON-shaped input: any JSON value, and mutations of a valid frame
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (v) => {
        const r = decodeFrame(bytes(v), WantFrame)
        assert.ok(typed(r))
        if (r.ok) assert.ok(WantFrame.safeParse(v).success)
      }),
      { numRuns: 1000 },
    )
    const valid = bytes({ want: [hex(7)], count: 1, hello })
    fc.assert(
      fc.property(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), (i, v) => {
        const m = valid.slice()
        m[i] = v
        assert.ok(typed(decodeFrame(m, WantFrame)))
      }),
      { numRuns: 1000 },
    )
  })
})
