/**
 * The dashboard's routes without a browser: with an API token, a LAN caller gets the page and its
 * static files (no data in them) but no data route without the token; every dashboard response
 * carries a CSP that forbids inline script and other origins; unknown files are 404.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { guardApi } from '../../node/api/access.ts'
import { dashboardRoutes } from '../../node/api/dashboard-routes.ts'
import type { DaemonContext } from '../../node/daemon.ts'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'

const TOKEN = 'routes-test-token'
const SELF = '12D3KooWDashboardSelfPeerIdForTheRoutesTest000000000'
const LAN = '192.0.2.20'

describe('dashboard routes', () => {
  let app: FastifyInstance
  before(async () => {
    const store = new MessageStore({ logger: silentLogger() }, {})
    const ctx = {
      config: { role: 'node', fleet: 'fleet-a', dataDir: '', tags: [], reportIntervalMs: 1000 },
      identity: { peerId: SELF },
      store,
    } as unknown as DaemonContext
    app = Fastify()
    guardApi(app, { token: TOKEN })
    await app.register(dashboardRoutes({ ctx }, { operator: false, now: () => 1000 }))
    await app.ready()
  })
  after(async () => {
    await app?.close()
  })

  test('a LAN caller gets the page and its files without the token, and no data', async () => {
    const page = await app.inject({ url: '/dashboard', remoteAddress: LAN })
    assert.equal(page.statusCode, 200)
    assert.match(page.headers['content-type'] as string, /^text\/html/)
    assert.match(page.body, /<script type="module" src="\/dashboard\/app.js">/)
    assert.ok(!page.body.includes(SELF))
    const csp = page.headers['content-security-policy'] as string
    assert.match(csp, /script-src 'self'/)
    assert.match(csp, /frame-ancestors 'none'/)
    assert.ok(!csp.includes('unsafe-inline'))
    for (const f of ['app.js', 'api.js', 'dom.js', 'render.js']) {
      const r = await app.inject({ url: `/dashboard/${f}`, remoteAddress: LAN })
      assert.equal(r.statusCode, 200, f)
      assert.match(r.headers['content-type'] as string, /^text\/javascript/)
      assert.equal(r.headers['x-content-type-options'], 'nosniff')
    }
    assert.match(
      (await app.inject({ url: '/dashboard/style.css', remoteAddress: LAN })).headers['content-type'] as string,
      /^text\/css/,
    )
    const data = await app.inject({ url: '/dashboard/fleet', remoteAddress: LAN })
    assert.equal(data.statusCode, 401)
    assert.ok(!data.body.includes(SELF))
  })

  test('with the token (or from loopback) the data route answers', async () => {
    for (const r of [
      await app.inject({ url: '/dashboard/fleet', remoteAddress: LAN, headers: { authorization: `Bearer ${TOKEN}` } }),
      await app.inject({ url: '/dashboard/fleet', remoteAddress: '127.0.0.1' }),
    ]) {
      assert.equal(r.statusCode, 200)
      const body = r.json() as { node: { id: string; operator: boolean }; now: number; devices: Array<{ id: string }> }
      assert.equal(body.node.id, SELF)
      assert.equal(body.node.operator, false)
      assert.equal(body.now, 1000)
      assert.deepEqual(
        body.devices.map((d) => d.id),
        [SELF],
      )
    }
  })

  test("a verdict's evidence: a bad digest is refused, an unknown one is not found, both in the one error contract", async () => {
    const bad = await app.inject({ url: '/dashboard/verdicts/not-a-digest', remoteAddress: '127.0.0.1' })
    assert.equal(bad.statusCode, 400)
    assert.equal((bad.json() as { error: { code: string } }).error.code, 'ERR_INVALID_INPUT')
    const unknown = await app.inject({ url: `/dashboard/verdicts/${'a'.repeat(64)}`, remoteAddress: '127.0.0.1' })
    assert.equal(unknown.statusCode, 404)
    assert.equal((unknown.json() as { error: { code: string } }).error.code, 'ERR_NOT_FOUND')
    const guarded = await app.inject({ url: `/dashboard/verdicts/${'a'.repeat(64)}`, remoteAddress: LAN })
    assert.equal(guarded.statusCode, 401)
  })

  test('every module and stylesheet the page loads is served', async () => {
    // the page's own references, followed from index.html through every module's imports
    const dir = new URL('../../node/api/dashboard/', import.meta.url)
    const seen = new Set<string>()
    const queue = ['index.html']
    while (queue.length > 0) {
      const name = queue.shift() as string
      if (seen.has(name)) continue
      seen.add(name)
      const r = await app.inject({ url: `/dashboard/${name}`, remoteAddress: '127.0.0.1' })
      assert.equal(r.statusCode, 200, `${name} is served`)
      assert.equal(r.body, readFileSync(new URL(name, dir), 'utf8'), `${name} as on disk`)
      const refs = [
        ...r.body.matchAll(/(?:from|import\(|src=|href=)\s*['"](?:\/dashboard\/|\.\/)([\w.-]+\.(?:js|css))['"]/g),
      ]
      for (const m of refs) queue.push(m[1])
    }
    assert.ok(seen.has('app-views.js') && seen.has('plot.js') && seen.has('style.css'), [...seen].join(', '))
  })

  test('only the listed files are served', async () => {
    for (const url of ['/dashboard/nope.js', '/dashboard/..%2Fserver.ts', '/dashboard/%2e%2e%2fdashboard-routes.ts']) {
      const r = await app.inject({ url, remoteAddress: '127.0.0.1' })
      assert.equal(r.statusCode, 404, url)
    }
  })
})
