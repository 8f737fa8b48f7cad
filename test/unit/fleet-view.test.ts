/**
 * The one fleet device view (protocols/fleet/device-view.ts) and its users: membership, cohort
 * tags that agree with the rollout's cohorts and never come from what a device declares, the
 * declared tags shown apart, and /status, the dashboard and the seed's list agreeing row by row.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { dashboardDevices } from '../../node/api/dashboard-fleet.ts'
import { storeFleetView } from '../../node/fleet-view.ts'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import { fleetDevices, latestEnrollment, type ViewReport } from '../../protocols/fleet/device-view.ts'
import { activeDevices } from '../../protocols/rollout/decide.ts'
import type { DeviceEnrollment, HealthReport, Revocation } from '../../protocols/schemas/index.ts'
import { listDevices } from '../../seed/devices.ts'
import { deviceKey, exampleEnrollment, exampleHealthReport } from '../fixtures/messages.ts'
import { add } from './rollout-fakes.ts'

const CAPS = { arch: 'x64', ram_mb: 2048, device_type: 'test' } as const
const enr = (device: string, tags: string[], issued_at: number, expires_at?: number): DeviceEnrollment => ({
  type: 'DeviceEnrollment',
  v: 1,
  fleet: 'f',
  device,
  tags,
  capabilities: CAPS,
  issued_at,
  ...(expires_at === undefined ? {} : { expires_at }),
})
const rev = (device: string, issued_at: number): Revocation => ({
  type: 'Revocation',
  v: 1,
  fleet: 'f',
  device,
  issued_at,
  reason: 'stolen',
})
const report = (device: string, end: number, tags: string[], active = [{ model: 'tiny', version: '1.0.0' }]) =>
  ({ device, window: { end }, active, staged: [], meta: { tags } }) satisfies ViewReport

describe('fleet device view', () => {
  const now = 1_000
  const input = {
    enrollments: [
      { message: enr('a', [], 100), digest: 'a1' },
      { message: enr('a', ['pilot'], 200), digest: 'a2' },
      { message: enr('b', ['lab'], 100, 150), digest: 'b1' },
      { message: enr('r', ['lab'], 100), digest: 'r1' },
    ],
    revocations: [rev('r', 300)],
    reports: [report('a', 400, ['declared-a']), report('a', 350, ['old'], []), report('u', 500, ['pilot'])],
    hellos: new Map([['h', { role: 'node' as const, tags: ['pilot'], capabilities: CAPS }]]),
    pending: new Set(['p']),
    self: 'me',
    now,
  }
  const by = new Map(fleetDevices(input).map((d) => [d.id, d]))

  test('lists every device named by a message, a hello, the pending set and self, sorted', () => {
    assert.deepEqual([...by.keys()], ['a', 'b', 'h', 'me', 'p', 'r', 'u'])
  })

  test('membership: enrolled, expired, revoked, pending, unenrolled', () => {
    const m = Object.fromEntries([...by].map(([id, d]) => [id, d.membership]))
    assert.deepEqual(m, {
      a: 'enrolled',
      b: 'expired',
      h: 'unenrolled',
      me: 'unenrolled',
      p: 'pending',
      r: 'revoked',
      u: 'unenrolled',
    })
    assert.equal(by.get('a')?.enrolled, true)
    assert.equal(by.get('b')?.enrolled, false)
    assert.deepEqual(by.get('r')?.revoked, { reason: 'stolen', issued_at: 300 })
    assert.equal(by.get('a')?.revoked, null)
  })

  test('declared tags are shown apart and never become cohort tags', () => {
    // u reports `pilot` and h says hello with `pilot`: neither is enrolled, so neither has cohort tags
    assert.deepEqual(by.get('u')?.tags, [])
    assert.deepEqual(by.get('u')?.declared_tags, ['pilot'])
    assert.deepEqual(by.get('h')?.tags, [])
    assert.deepEqual(by.get('h')?.declared_tags, ['pilot'])
    // a: the effective enrollment's tags, its latest report's declared tags apart
    assert.deepEqual(by.get('a')?.tags, ['pilot'])
    assert.deepEqual(by.get('a')?.declared_tags, ['declared-a'])
    assert.equal(by.get('me')?.declared_tags, null)
  })

  test("names: the enrollment's (the operator's choice) wins over the one a device declares in its hello", () => {
    const named = fleetDevices({
      ...input,
      enrollments: [...input.enrollments, { message: { ...enr('n', [], 100), name: 'till-7' }, digest: 'n1' }],
      hellos: new Map([
        ['h', { role: 'node' as const, name: 'pi-kitchen', tags: [], capabilities: CAPS }],
        ['n', { role: 'node' as const, name: 'its-hostname', tags: [], capabilities: CAPS }],
      ]),
    })
    const names = Object.fromEntries(named.map((d) => [d.id, d.name]))
    assert.deepEqual({ h: names.h, n: names.n, a: names.a }, { h: 'pi-kitchen', n: 'till-7', a: null })
  })

  test("the cohort tags are exactly the ones the rollout's cohorts use", () => {
    const cohorts = activeDevices(
      input.enrollments.map((r) => r.message),
      input.revocations,
      now,
    )
    const viewed = [...by.values()].filter((d) => d.membership === 'enrolled').map((d) => ({ id: d.id, tags: d.tags }))
    assert.deepEqual(viewed, cohorts)
  })

  test('versions and times from the latest report; last_seen falls back to the enrollment', () => {
    assert.deepEqual(by.get('a')?.active, ['tiny@1.0.0'])
    assert.deepEqual(by.get('a')?.staged, [])
    assert.equal(by.get('a')?.last_report, 400)
    assert.equal(by.get('a')?.last_seen, 400)
    assert.equal(by.get('b')?.last_report, null)
    assert.equal(by.get('b')?.last_seen, 100)
    assert.equal(by.get('b')?.staged, null)
    assert.equal(by.get('a')?.agent_stuck, null)
  })

  test('the agent version and whether it is stuck come from the latest report only', () => {
    const stuck = { ...report('s', 600, []), agent: { version: '0.9.1', stuck: 'nothing to go back to' } }
    const later = { ...report('s', 700, []), agent: { version: '0.9.0' } }
    const view = (reports: ViewReport[]) => fleetDevices({ ...input, reports }).find((d) => d.id === 's')
    assert.deepEqual([view([stuck])?.agent_version, view([stuck])?.agent_stuck], ['0.9.1', 'nothing to go back to'])
    // it went back (or took a fixed version) since: no longer stuck
    assert.deepEqual([view([later, stuck])?.agent_version, view([later, stuck])?.agent_stuck], ['0.9.0', null])
  })

  test('the effective enrollment: highest issued_at, ties to the lower tag list', () => {
    const x = { message: enr('x', ['b'], 5), digest: 'x1' }
    const y = { message: enr('x', ['a'], 5), digest: 'x2' }
    assert.equal(latestEnrollment([x, y])?.digest, 'x2')
    assert.equal(latestEnrollment([y, x])?.digest, 'x2')
  })
})

describe('status, dashboard and device list share the view', () => {
  test('over one store they agree on every device, and the dashboard no longer falls back to declared tags', async () => {
    const [me, enrolled, unenrolled] = await Promise.all([deviceKey(), deviceKey(), deviceKey()])
    const store = new MessageStore({ logger: silentLogger() }, {})
    const now = Date.now()
    add(
      store,
      exampleEnrollment({ device: enrolled.peerId, tags: ['pilot'], issued_at: now - 1000, expires_at: undefined }),
    )
    const h = (device: string, tags: string[]): HealthReport => {
      const r = exampleHealthReport({ device, window: { start: now - 2000, end: now - 1000 } })
      return { ...r, meta: { ...r.meta, tags } }
    }
    add(store, h(unenrolled.peerId, ['pilot']))
    add(store, h(enrolled.peerId, ['lab']))

    const status = storeFleetView(store, { self: me.peerId, now })
    const dashboard = dashboardDevices(store, me.peerId, now)
    const seed = listDevices({
      enrollments: store.list('DeviceEnrollment').map((m) => ({ message: m.message, digest: m.digest })),
      revocations: [],
      reports: store.list('HealthReport').map((m) => m.message),
      self: me.peerId,
      connected: new Set(),
      isAuto: () => true,
      now,
    })
    assert.deepEqual(
      dashboard.map(({ report: _r, ...d }) => d),
      status,
    )
    assert.deepEqual(
      seed.map(({ state: _s, pinned: _p, connected: _c, ...d }) => d),
      status,
    )
    const row = new Map(dashboard.map((d) => [d.id, d]))
    assert.deepEqual(row.get(unenrolled.peerId)?.tags, [])
    assert.deepEqual(row.get(unenrolled.peerId)?.declared_tags, ['pilot'])
    assert.deepEqual(row.get(enrolled.peerId)?.tags, ['pilot'])
    assert.deepEqual(row.get(enrolled.peerId)?.declared_tags, ['lab'])
    assert.notEqual(row.get(enrolled.peerId)?.report, null)
  })
})
