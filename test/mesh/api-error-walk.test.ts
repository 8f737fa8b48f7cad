/**
 * The error contract holds on every route (node/api/errors.ts): a real seed and a real device
 * (the daemons' full compositions, loopback, mDNS off, an API token), every route they register
 * (the server's onRoute list) called with no token, a foreign Host, a foreign Origin, and bad
 * input with the token (bad JSON, wrong content type, an oversized body, junk parameters).
 * Every error answer is `{ error: { code: 'ERR_…', message } }` with the table's status; the
 * OpenAI-compatible `/v1/…` routes answer their own errors in OpenAI's shape (same envelope,
 * OpenAI's lowercase codes, plus `type`), and the access errors in front of them in the contract.
 */

import assert from 'node:assert/strict'
import { hostname } from 'node:os'
import { after, before, describe, test } from 'node:test'
import type { InjectOptions } from 'fastify'
import { ERROR_STATUS, statusOf } from '../../node/api/errors.ts'
import type { ApiRoute } from '../../node/api/server.ts'
import { API_BODY_LIMIT } from '../../node/api/server.ts'
import { Daemon } from '../../node/daemon.ts'
import { deviceServices } from '../../node/device-services.ts'
import { hostNameOf } from '../../node/discovery/bonjour-advertiser.ts'
import { silentLogger } from '../../node/logger.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { scaled } from '../helpers/index.ts'
import { makeFleet, tempDir } from './fixtures.ts'

const TOKEN = 'walk-the-routes-token-0123456789'
const LAN = '192.0.2.10'
const AUTH = { authorization: `Bearer ${TOKEN}` }

/** A concrete path for a route (`:peer` and friends filled with junk). */
const concrete = (url: string) => url.replace(/:[a-zA-Z_]+/g, 'junk').replace(/\*$/, 'junk')

interface Answer {
  route: string
  req: string
  status: number
  body: unknown
}

/** Every request the walk sends to one route. */
function requests(r: ApiRoute): Array<[string, InjectOptions]> {
  const url = concrete(r.url)
  const m = r.method as InjectOptions['method']
  const base = { method: m, url, remoteAddress: '127.0.0.1', headers: { host: '127.0.0.1:7420' } }
  const out: Array<[string, InjectOptions]> = [
    ['no token from the LAN', { ...base, remoteAddress: LAN }],
    [
      'a wrong token from the LAN',
      { ...base, remoteAddress: LAN, headers: { ...base.headers, authorization: 'Bearer x' } },
    ],
    ['a foreign Host from loopback', { ...base, headers: { host: 'evil.local:7420' } }],
    ['junk parameters, with the token', { ...base, remoteAddress: LAN, headers: { ...base.headers, ...AUTH } }],
  ]
  if (r.method === 'GET') return out
  const h = { ...base.headers, ...AUTH }
  out.push(
    ['a foreign Origin', { ...base, headers: { ...base.headers, origin: 'http://evil.example' } }],
    ['bad JSON', { ...base, headers: { ...h, 'content-type': 'application/json' }, payload: '{"no' }],
    ['an empty JSON body', { ...base, headers: { ...h, 'content-type': 'application/json' }, payload: '' }],
    ['an empty object', { ...base, headers: { ...h, 'content-type': 'application/json' }, payload: '{}' }],
    ['a wrong content type', { ...base, headers: { ...h, 'content-type': 'application/x-unknown' }, payload: 'x' }],
    ['junk bytes', { ...base, headers: { ...h, 'content-type': 'application/octet-stream' }, payload: 'junk' }],
    [
      'an oversized JSON body',
      {
        ...base,
        headers: { ...h, 'content-type': 'application/json' },
        payload: JSON.stringify({ x: 'y'.repeat(API_BODY_LIMIT) }),
      },
    ],
  )
  return out
}

describe('every route answers errors in the one contract', { timeout: scaled(240_000) }, () => {
  const fleet = makeFleet('walk-fleet')
  const daemons: Daemon[] = []
  const cleanups: Array<() => Promise<void>> = []
  const answers: Answer[] = []
  const routes = new Map<Daemon, readonly ApiRoute[]>()

  before(async () => {
    const opts = async () => {
      const t = await tempDir('llmesh-walk-')
      cleanups.push(t.cleanup)
      return {
        fleet: { id: fleet.id, psk: fleet.psk, trust: fleet.trust },
        dataDir: t.dir,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        api: '127.0.0.1:0',
        apiToken: TOKEN,
        mdns: false,
        logger: silentLogger(),
      }
    }
    const seed = createSeedDaemon({ ...(await opts()), signer: fleet.signer })
    await seed.start()
    daemons.push(seed)
    const dc = deviceServices({ supervisor: { threads: 1 } })
    const device = new Daemon({ ...(await opts()), services: dc.services, routes: dc.routes })
    await device.start()
    daemons.push(device)
    for (const d of daemons) {
      const api = d.apiServer
      assert.ok(api)
      routes.set(d, api.routes)
      for (const r of api.routes) {
        for (const [what, req] of requests(r)) {
          const res = await api.inject(req)
          let body: unknown
          try {
            body = res.json()
          } catch {
            body = res.body
          }
          answers.push({ route: `${r.method} ${r.url}`, req: what, status: res.statusCode, body })
        }
      }
      const unknown = await api.inject({ url: '/no/such/route', remoteAddress: '127.0.0.1' })
      answers.push({
        route: 'GET /no/such/route',
        req: 'unknown route',
        status: unknown.statusCode,
        body: unknown.json(),
      })
    }
  })

  after(async () => {
    for (const d of daemons.reverse()) await d.stop()
    for (const c of cleanups) await c()
  })

  test('the walk covers both compositions’ routes', () => {
    const all = new Set([...routes.values()].flat().map((r) => `${r.method} ${r.url}`))
    for (const r of [
      'GET /status',
      'GET /metrics',
      'GET /rollout',
      'GET /rollout/:model/:version',
      'POST /rollout/commands',
      'POST /messages',
      'GET /dashboard/fleet',
      'GET /devices',
      'GET /devices/:peer',
      'POST /devices/:peer/enrollment',
      'POST /devices/:peer/revocation',
      'POST /releases',
      'GET /releases',
      'GET /releases/:model/:version',
      'GET /releases/:model/:version/export',
      'GET /releases/:model/:version/chunks/:hash',
      'POST /releases/import',
      'GET /fleet/report',
      'POST /fleet/report/import',
      'GET /v1/models',
      'POST /v1/chat/completions',
      'POST /v1/completions',
    ]) {
      assert.ok(all.has(r), `${r} is registered and walked`)
    }
    assert.ok(answers.length > 100, `${answers.length} answers`)
  })

  test('every error answer has the one shape, an ERR_ code and the table’s status', () => {
    const errors = answers.filter((a) => a.status >= 400)
    assert.ok(errors.length > 80, `${errors.length} error answers`)
    const codes = new Set<string>()
    for (const a of errors) {
      const where = `${a.route} (${a.req}) → ${a.status} ${JSON.stringify(a.body)}`
      const body = a.body as { error?: { code?: unknown; message?: unknown; type?: unknown } }
      assert.equal(typeof body, 'object', where)
      assert.deepEqual(Object.keys(body), ['error'], where)
      assert.equal(typeof body.error?.message, 'string', where)
      const code = body.error?.code
      assert.equal(typeof code, 'string', where)
      if (a.route.includes(' /v1/') && !(code as string).startsWith('ERR_')) {
        // OpenAI's shape for OpenAI clients: same envelope, OpenAI's codes, a `type`
        assert.equal(typeof body.error?.type, 'string', where)
        continue
      }
      assert.deepEqual(Object.keys(body.error ?? {}).sort(), ['code', 'message'], where)
      assert.match(code as string, /^ERR_[A-Z0-9_]+$/, where)
      assert.ok((code as string) in ERROR_STATUS, `${code} is in the table: ${where}`)
      assert.equal(a.status, statusOf(code as string), where)
      codes.add(code as string)
    }
    // the walk reached the access hook, fastify's refusals and the routes' own refusals
    for (const c of [
      'ERR_UNAUTHORIZED',
      'ERR_HOST_NOT_ALLOWED',
      'ERR_ORIGIN_NOT_ALLOWED',
      'ERR_BAD_JSON',
      'ERR_UNSUPPORTED_MEDIA_TYPE',
      'ERR_BODY_TOO_LARGE',
      'ERR_NO_ROUTE',
      'ERR_INVALID_INPUT',
      'ERR_NOT_FOUND',
    ]) {
      assert.ok(codes.has(c), `some route answered ${c} (got ${[...codes].join(', ')})`)
    }
  })

  test('no token, a wrong token or a foreign Host: refused on every route but the dashboard’s page and files', () => {
    for (const a of answers.filter((x) => /no token|wrong token|foreign Host/.test(x.req))) {
      const publicPage = /^GET \/dashboard(\/|\/:file)?$/.test(a.route)
      if (publicPage) continue
      assert.ok(a.status === 401 || a.status === 403, `${a.route} (${a.req}) → ${a.status}`)
    }
  })

  test('the daemon passes its own .local names to the Host check, and only those', async () => {
    const device = daemons[1]
    const api = device.apiServer
    assert.ok(api)
    const get = (host: string) => api.inject({ url: '/status', remoteAddress: '127.0.0.1', headers: { host } })
    for (const host of [`${hostname()}.local:7420`, `${hostNameOf(device.context.identity.peerId)}:7420`]) {
      assert.equal((await get(host)).statusCode, 200, host)
    }
    const other = `${hostNameOf(daemons[0].context.identity.peerId)}:7420`
    assert.equal((await get(other)).statusCode, 403, 'another node’s name')
  })
})
