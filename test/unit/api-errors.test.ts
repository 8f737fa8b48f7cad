/**
 * The node API's error contract (node/api/errors.ts): one table, one body `{error: {code, message}}`,
 * fastify's own refusals under stable ERR_ codes, bugs as a generic 500 with the real error logged.
 */
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import Fastify, { type InjectOptions } from 'fastify'
import pino from 'pino'
import { ERROR_STATUS, errorReply, INTERNAL_MESSAGE, installErrorHandlers, statusOf } from '../../node/api/errors.ts'
import { InvalidInputError, LlmeshError, VerificationError } from '../../protocols/errors.ts'

function capturingLogger() {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)))
      cb()
    },
  })
  return { log: pino({ level: 'info' }, stream), lines }
}

test('the table: the codes other layers use, one status each', () => {
  assert.deepEqual(
    [
      'ERR_INVALID_INPUT',
      'ERR_UNAUTHORIZED',
      'ERR_HOST_NOT_ALLOWED',
      'ERR_ORIGIN_NOT_ALLOWED',
      'ERR_NOT_ENROLLED',
      'ERR_NOT_FOUND',
      'ERR_UNKNOWN_RELEASE',
      'ERR_REVOKED',
      'ERR_VERSION_EXISTS',
      'ERR_DOWNGRADE',
      'ERR_UPLOAD_TOO_LARGE',
      'ERR_INTERNAL',
    ].map(statusOf),
    [400, 401, 403, 403, 403, 404, 404, 409, 409, 409, 413, 500],
  )
  for (const [code, status] of Object.entries(ERROR_STATUS)) {
    assert.match(code, /^ERR_[A-Z0-9_]+$/)
    assert.ok(status >= 400 && status < 600, code)
  }
})

test('errorReply: typed errors keep code and message; listed codes are trusted; anything else is ERR_INTERNAL', () => {
  assert.deepEqual(errorReply(new InvalidInputError('tags must be a list')), {
    status: 400,
    body: { error: { code: 'ERR_INVALID_INPUT', message: 'tags must be a list' } },
    log: false,
  })
  assert.equal(errorReply(new VerificationError('ERR_REVOKED', 'revoked')).status, 409)
  assert.equal(errorReply(new LlmeshError('ERR_SOMETHING_NEW', 'x')).status, 400, 'an unlisted typed refusal')
  // a listed code on a plain error (another layer's Object.assign) keeps its status
  assert.equal(errorReply(Object.assign(new Error('exists'), { code: 'ERR_VERSION_EXISTS' })).status, 409)
  // Node's own ERR_ codes are bugs here: no code or message leaks
  for (const err of [
    Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }),
    new TypeError('x is undefined'),
    'a string',
    null,
  ]) {
    assert.deepEqual(errorReply(err), {
      status: 500,
      body: { error: { code: 'ERR_INTERNAL', message: INTERNAL_MESSAGE } },
      log: true,
    })
  }
})

test('the handlers: fastify refusals get stable codes; a bug is a generic 500, logged', async () => {
  const { log, lines } = capturingLogger()
  const app = Fastify({ bodyLimit: 64 })
  installErrorHandlers(app, log)
  app.post('/json', async () => ({ ok: true }))
  app.get('/bug', async () => {
    throw new Error('secret detail of a bug')
  })
  app.get('/typed', async () => {
    throw new LlmeshError('ERR_NOT_ENROLLED', 'not enrolled')
  })
  await app.ready()
  const cases: Array<[InjectOptions, number, string]> = [
    [
      { method: 'POST', url: '/json', headers: { 'content-type': 'application/json' }, payload: '{bad' },
      400,
      'ERR_BAD_JSON',
    ],
    [
      { method: 'POST', url: '/json', headers: { 'content-type': 'application/json' }, payload: '' },
      400,
      'ERR_BAD_JSON',
    ],
    [
      { method: 'POST', url: '/json', headers: { 'content-type': 'image/png' }, payload: 'x' },
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
    ],
    [{ method: 'POST', url: '/json', payload: { big: 'x'.repeat(200) } }, 413, 'ERR_BODY_TOO_LARGE'],
    [{ method: 'GET', url: '/nope?x=1' }, 404, 'ERR_NO_ROUTE'],
    [{ method: 'DELETE', url: '/json' }, 404, 'ERR_NO_ROUTE'],
    [{ method: 'GET', url: '/typed' }, 403, 'ERR_NOT_ENROLLED'],
    [{ method: 'GET', url: '/bug' }, 500, 'ERR_INTERNAL'],
  ]
  for (const [req, status, code] of cases) {
    const r = await app.inject(req)
    assert.equal(r.statusCode, status, `${req.method} ${req.url} ${r.body}`)
    const body = r.json()
    assert.deepEqual(Object.keys(body), ['error'])
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message'])
    assert.equal(body.error.code, code)
    assert.equal(statusOf(code), status)
  }
  const bug = await app.inject({ url: '/bug' })
  assert.ok(!bug.body.includes('secret detail'), 'the bug is not sent')
  const logged = lines.find((l) => l.msg === 'api error')
  assert.ok(logged, 'the bug is logged')
  assert.match(String((logged.err as { message?: string }).message), /secret detail of a bug/)
  assert.equal(lines.filter((l) => l.msg === 'api error').length, 2, 'only the 500s are logged')
  await app.close()
})
