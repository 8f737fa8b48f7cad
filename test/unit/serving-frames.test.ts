/** PROTOCOL_INFER frames (protocols/infer.ts): round trips, and hostile frames refused with typed errors. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  dataFrames,
  decodeBodyFrame,
  decodeInferHead,
  decodeInferRequest,
  END_FRAME,
  encodeInferHead,
  encodeInferRequest,
  INFER_MAX_CHUNK_BYTES,
  INFER_MAX_DEPTH,
  INFER_MAX_REQUEST_BYTES,
  INFER_MAX_RESPONSE_BYTES,
  InferFrameError,
} from '../../protocols/infer.ts'

const enc = new TextEncoder()
const req = { v: 1 as const, path: '/v1/chat/completions' as const, model: 'tiny', body: { messages: [] } }

const refused = (fn: () => unknown, code: string) =>
  assert.throws(fn, (e: unknown) => e instanceof InferFrameError && e.code === code)

test('a request and a head round-trip', () => {
  assert.deepEqual(decodeInferRequest(encodeInferRequest(req)), req)
  const head = { status: 200, content_type: 'text/event-stream; charset=utf-8', version: '1.0.0' }
  assert.deepEqual(decodeInferHead(encodeInferHead(head)), head)
})

test('hostile request frames are refused before or by the schema', () => {
  refused(() => decodeInferRequest(new Uint8Array(INFER_MAX_REQUEST_BYTES + 1)), 'ERR_INFER_OVERSIZED')
  const deep = `{"v":1,"path":"/v1/completions","model":"tiny","body":{"a":${'['.repeat(INFER_MAX_DEPTH)}${']'.repeat(INFER_MAX_DEPTH)}}}`
  refused(() => decodeInferRequest(enc.encode(deep)), 'ERR_INFER_FRAME')
  refused(() => decodeInferRequest(Uint8Array.of(0xff, 0xfe)), 'ERR_INFER_FRAME')
  refused(() => decodeInferRequest(enc.encode('{"v":1}')), 'ERR_INFER_FRAME')
  // only the OpenAI inference routes may be asked for
  refused(
    () => decodeInferRequest(enc.encode(JSON.stringify({ ...req, path: '/rollout/commands' }))),
    'ERR_INFER_FRAME',
  )
  refused(() => decodeInferRequest(enc.encode(JSON.stringify({ ...req, model: '../x' }))), 'ERR_INFER_FRAME')
  refused(() => decodeInferRequest(enc.encode(JSON.stringify({ ...req, body: [1] }))), 'ERR_INFER_FRAME')
  refused(() => encodeInferRequest({ ...req, body: { p: 'x'.repeat(INFER_MAX_REQUEST_BYTES) } }), 'ERR_INFER_OVERSIZED')
})

test('hostile heads are refused', () => {
  refused(() => decodeInferHead(enc.encode(JSON.stringify({ status: 99, content_type: 'x' }))), 'ERR_INFER_FRAME')
  refused(
    () => decodeInferHead(enc.encode(JSON.stringify({ status: 200, content_type: 'x', retry_after: '1\r\nx: y' }))),
    'ERR_INFER_FRAME',
  )
  refused(
    () => decodeInferHead(enc.encode(JSON.stringify({ status: 200, content_type: 'x'.repeat(129) }))),
    'ERR_INFER_FRAME',
  )
  refused(() => decodeInferHead(new Uint8Array(5000)), 'ERR_INFER_OVERSIZED')
})

test('bodies are split into bounded frames and reassemble; the end frame ends them', () => {
  const body = new Uint8Array(INFER_MAX_CHUNK_BYTES * 2 + 7).map((_, i) => i % 251)
  const frames = dataFrames(body)
  assert.equal(frames.length, 3)
  assert.ok(frames.every((f) => f.byteLength <= INFER_MAX_CHUNK_BYTES))
  let received = 0
  const parts: Uint8Array[] = []
  for (const f of frames) {
    const d = decodeBodyFrame(f, received)
    assert.equal(d.end, false)
    if (!d.end) {
      parts.push(d.data)
      received += d.data.byteLength
    }
  }
  assert.deepEqual(Buffer.concat(parts), Buffer.from(body))
  assert.deepEqual(decodeBodyFrame(END_FRAME, received), { end: true })
  assert.deepEqual(dataFrames(new Uint8Array(0)), [])
})

test('hostile body frames: unknown tag, empty data, oversized frame, a body past the response bound', () => {
  refused(() => decodeBodyFrame(Uint8Array.of(7, 1, 2), 0), 'ERR_INFER_FRAME')
  refused(() => decodeBodyFrame(Uint8Array.of(1), 0), 'ERR_INFER_FRAME')
  refused(() => decodeBodyFrame(new Uint8Array(0), 0), 'ERR_INFER_FRAME')
  refused(() => decodeBodyFrame(new Uint8Array(INFER_MAX_CHUNK_BYTES + 1).fill(1), 0), 'ERR_INFER_OVERSIZED')
  refused(() => decodeBodyFrame(Uint8Array.of(1, 1, 1), INFER_MAX_RESPONSE_BYTES - 1), 'ERR_INFER_OVERSIZED')
})
