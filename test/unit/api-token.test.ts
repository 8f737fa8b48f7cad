/**
 * Who may call the node API (node/api/access.ts): the token for non-loopback callers, the Host
 * check against DNS rebinding (only this node's own `.local` names), the Origin check on mutating
 * routes, and the loopback exemption only under an allowed Host.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import { bearerMatches, guardApi, hostAllowed, originAllowed, PUBLIC_ROUTE } from '../../node/api/access.ts'
import { installErrorHandlers } from '../../node/api/errors.ts'
import { silentLogger } from '../../node/logger.ts'

const TOKEN = 'correct-horse-battery-staple'
const OWN = ['shop12-pi.local', 'llmesh-ab12cd34ef56.local']
const LAN = '10.20.30.40'

async function app(token: string | undefined = TOKEN) {
  const a = Fastify({ logger: false })
  installErrorHandlers(a, silentLogger())
  guardApi(a, { token, localNames: OWN })
  a.get('/status', async () => ({ ok: true }))
  a.post('/rollout/commands', async () => ({ signed: true }))
  a.get('/dashboard', { config: PUBLIC_ROUTE }, async () => 'page')
  await a.ready()
  return a
}

test('remote callers without the right token get 401 ERR_UNAUTHORIZED, on every route', async () => {
  const a = await app()
  for (const [method, url] of [
    ['GET', '/status'],
    ['POST', '/rollout/commands'],
  ] as const) {
    const none = await a.inject({ method, url, remoteAddress: LAN })
    assert.equal(none.statusCode, 401)
    assert.deepEqual(none.json(), { error: { code: 'ERR_UNAUTHORIZED', message: 'missing or wrong API token' } })
    assert.equal(none.headers['www-authenticate'], 'Bearer')
    const wrong = await a.inject({ method, url, remoteAddress: LAN, headers: { authorization: 'Bearer nope' } })
    assert.equal(wrong.statusCode, 401)
    const right = await a.inject({ method, url, remoteAddress: LAN, headers: { authorization: `Bearer ${TOKEN}` } })
    assert.equal(right.statusCode, 200)
  }
  await a.close()
})

test('loopback callers (IPv4, IPv6, mapped) need no token under an allowed Host', async () => {
  const a = await app()
  for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
    const r = await a.inject({ method: 'GET', url: '/status', remoteAddress: ip, headers: { host: '127.0.0.1:7420' } })
    assert.equal(r.statusCode, 200, ip)
  }
  assert.equal((await a.inject({ method: 'GET', url: '/status', remoteAddress: '::ffff:10.0.0.1' })).statusCode, 401)
  await a.close()
})

test('a loopback caller loses its exemption under a Host that fails the check (token configured or not)', async () => {
  for (const token of [TOKEN, undefined]) {
    const a = await app(token)
    // the reported exploit: Host evil.local from loopback signed an abort with a token configured
    const r = await a.inject({
      method: 'POST',
      url: '/rollout/commands',
      remoteAddress: '127.0.0.1',
      headers: { host: 'evil.local:7420', 'content-type': 'application/json' },
      payload: { action: 'abort', model: 'tiny', version: '1.0.0', reason: 'x' },
    })
    assert.equal(r.statusCode, 403, String(token))
    assert.equal(r.json().error.code, 'ERR_HOST_NOT_ALLOWED')
    await a.close()
  }
})

test('DNS rebinding: only IP literals, localhost and this node’s own .local names pass the Host check', async () => {
  const a = await app()
  // the page holds no data: it loads under any name (its data requests then need the token)
  const page = await a.inject({ method: 'GET', url: '/dashboard', remoteAddress: LAN, headers: { host: 'x.example' } })
  assert.equal(page.statusCode, 200)
  const get = (host: string, headers: Record<string, string> = {}) =>
    a.inject({ method: 'GET', url: '/status', remoteAddress: '127.0.0.1', headers: { host, ...headers } })
  for (const host of [
    '127.0.0.1:7420',
    'localhost:7420',
    'localhost',
    '[::1]:7420',
    'shop12-pi.local:7420',
    'SHOP12-PI.LOCAL.',
    'llmesh-ab12cd34ef56.local',
    '10.0.0.5',
  ]) {
    assert.equal((await get(host)).statusCode, 200, host)
  }
  for (const host of [
    'evil.local:7420',
    'evil.local',
    'shop12-pi.local.evil.example',
    'evil.example:7420',
    '127.0.0.1.nip.io:7420',
    'localhost.evil.example',
    'app.localhost:3000',
    '[not-an-ip]:7420',
  ]) {
    const r = await get(host)
    assert.equal(r.statusCode, 403, host)
    assert.deepEqual(Object.keys(r.json().error).sort(), ['code', 'message'])
    assert.equal(r.json().error.code, 'ERR_HOST_NOT_ALLOWED')
  }
  // the token (which a rebinding page cannot know) lets a named host through
  assert.equal((await get('node.example:7420', { authorization: `Bearer ${TOKEN}` })).statusCode, 200)
  await a.close()
})

test('mutating routes: a present Origin must be the API’s own; absent is fine (CLI)', async () => {
  const a = await app()
  const post = (headers: Record<string, string>, remoteAddress = '127.0.0.1') =>
    a.inject({
      method: 'POST',
      url: '/rollout/commands',
      remoteAddress,
      headers: { host: '127.0.0.1:7420', ...headers },
    })
  assert.equal((await post({})).statusCode, 200, 'no Origin: the CLI')
  assert.equal((await post({ origin: 'http://127.0.0.1:7420' })).statusCode, 200, 'the dashboard served by the node')
  for (const origin of [
    'http://evil.example',
    'http://127.0.0.1:8080',
    'https://127.0.0.1:7420',
    'http://localhost:7420',
    'null',
    'not a url',
  ]) {
    const r = await post({ origin })
    assert.equal(r.statusCode, 403, origin)
    assert.equal(r.json().error.code, 'ERR_ORIGIN_NOT_ALLOWED')
    // the token does not make a foreign page's request acceptable
    const withToken = await post({ origin, authorization: `Bearer ${TOKEN}` }, LAN)
    assert.equal(withToken.statusCode, 403, `${origin} with the token`)
  }
  // a remote browser on the dashboard under the node's own name, with the token
  const own = await a.inject({
    method: 'POST',
    url: '/rollout/commands',
    remoteAddress: LAN,
    headers: { host: 'shop12-pi.local:7420', origin: 'http://shop12-pi.local:7420', authorization: `Bearer ${TOKEN}` },
  })
  assert.equal(own.statusCode, 200)
  // reads are not origin-checked (a cross-origin page cannot read the answer anyway)
  const read = await a.inject({
    method: 'GET',
    url: '/status',
    remoteAddress: '127.0.0.1',
    headers: { host: '127.0.0.1:7420', origin: 'http://evil.example' },
  })
  assert.equal(read.statusCode, 200)
  await a.close()
})

test('originAllowed', () => {
  assert.equal(originAllowed(undefined, 'anything'), true)
  assert.equal(originAllowed('http://10.0.0.5:7420', '10.0.0.5:7420'), true)
  assert.equal(originAllowed('http://[::1]:7420', '[::1]:7420'), true)
  assert.equal(originAllowed('http://node:80', 'node'), true, 'default port')
  assert.equal(originAllowed('http://10.0.0.5:7420', undefined), false)
  assert.equal(originAllowed('http://10.0.0.5:7421', '10.0.0.5:7420'), false)
})

test('bearerMatches', () => {
  assert.equal(bearerMatches(`Bearer ${TOKEN}`, TOKEN), true)
  assert.equal(bearerMatches(`bearer  ${TOKEN}`, TOKEN), true)
  assert.equal(bearerMatches(TOKEN, TOKEN), false)
  assert.equal(bearerMatches(undefined, TOKEN), false)
  assert.equal(bearerMatches(`Bearer ${TOKEN}x`, TOKEN), false)
})

test('hostAllowed', () => {
  assert.equal(hostAllowed(undefined), true)
  assert.equal(hostAllowed('192.168.1.20:80'), true)
  assert.equal(hostAllowed('[fe80::1]:7420'), true)
  assert.equal(hostAllowed('localhost.:7420'), true)
  assert.equal(hostAllowed('app.localhost:3000'), false)
  assert.equal(hostAllowed('any.local'), false)
  assert.equal(hostAllowed('mine.local', ['mine.local']), true)
  assert.equal(hostAllowed('attacker.com'), false)
  assert.equal(hostAllowed('a b'), false)
})
