/** The API token: non-loopback callers need the bearer token on every route; loopback never does. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import { bearerMatches, hostAllowed, PUBLIC_ROUTE, refuseRebinding, requireApiToken } from '../../node/api/server.ts'

const TOKEN = 'correct-horse-battery-staple'

async function app() {
  const a = Fastify({ logger: false })
  requireApiToken(a, TOKEN)
  a.get('/status', async () => ({ ok: true }))
  a.post('/rollout/commands', async () => ({ signed: true }))
  await a.ready()
  return a
}

test('remote callers without the right token get 401 in the OpenAI error shape, on every route', async () => {
  const a = await app()
  for (const [method, url] of [
    ['GET', '/status'],
    ['POST', '/rollout/commands'],
  ] as const) {
    const none = await a.inject({ method, url, remoteAddress: '10.20.30.40' })
    assert.equal(none.statusCode, 401)
    assert.equal(none.json().error.code, 'invalid_api_key')
    const wrong = await a.inject({
      method,
      url,
      remoteAddress: '10.20.30.40',
      headers: { authorization: 'Bearer nope' },
    })
    assert.equal(wrong.statusCode, 401)
    const right = await a.inject({
      method,
      url,
      remoteAddress: '10.20.30.40',
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    assert.equal(right.statusCode, 200)
  }
  await a.close()
})

test('loopback callers (IPv4, IPv6, mapped) need no token', async () => {
  const a = await app()
  for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
    assert.equal((await a.inject({ method: 'GET', url: '/status', remoteAddress: ip })).statusCode, 200, ip)
  }
  assert.equal((await a.inject({ method: 'GET', url: '/status', remoteAddress: '::ffff:10.0.0.1' })).statusCode, 401)
  await a.close()
})

test('bearerMatches', () => {
  assert.equal(bearerMatches(`Bearer ${TOKEN}`, TOKEN), true)
  assert.equal(bearerMatches(`bearer  ${TOKEN}`, TOKEN), true)
  assert.equal(bearerMatches(TOKEN, TOKEN), false)
  assert.equal(bearerMatches(undefined, TOKEN), false)
  assert.equal(bearerMatches(`Bearer ${TOKEN}x`, TOKEN), false)
})

test('DNS rebinding: a Host that is not an IP, localhost or .local is refused, even from loopback', async () => {
  const a = Fastify({ logger: false })
  refuseRebinding(a, TOKEN)
  requireApiToken(a, TOKEN)
  a.get('/status', async () => ({ ok: true }))
  a.get('/dashboard', { config: PUBLIC_ROUTE }, async () => 'page')
  await a.ready()
  // the page holds no data: it loads under any name (its data requests then need the token)
  const page = await a.inject({
    method: 'GET',
    url: '/dashboard',
    remoteAddress: '10.1.2.3',
    headers: { host: 'seed.site.example' },
  })
  assert.equal(page.statusCode, 200)
  const get = (host: string, headers: Record<string, string> = {}) =>
    a.inject({ method: 'GET', url: '/status', remoteAddress: '127.0.0.1', headers: { host, ...headers } })
  for (const host of [
    '127.0.0.1:7420',
    'localhost:7420',
    'localhost',
    '[::1]:7420',
    'llmesh-ab12.local:7420',
    '10.0.0.5',
  ]) {
    assert.equal((await get(host)).statusCode, 200, host)
  }
  for (const host of ['evil.example:7420', 'evil.example', '127.0.0.1.nip.io:7420', 'localhost.evil.example']) {
    const r = await get(host)
    assert.equal(r.statusCode, 403, host)
    assert.equal(r.json().error.code, 'host_not_allowed')
  }
  // the token (which a rebinding page cannot know) lets a named host through
  assert.equal((await get('node.example:7420', { authorization: `Bearer ${TOKEN}` })).statusCode, 200)
  await a.close()
})

test('hostAllowed', () => {
  assert.equal(hostAllowed(undefined), true)
  assert.equal(hostAllowed('192.168.1.20:80'), true)
  assert.equal(hostAllowed('[fe80::1]:7420'), true)
  assert.equal(hostAllowed('app.localhost:3000'), true)
  assert.equal(hostAllowed('localhost.:7420'), true)
  assert.equal(hostAllowed('attacker.com'), false)
  assert.equal(hostAllowed('a b'), false)
})
