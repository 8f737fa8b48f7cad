/**
 * A device whose agent is stuck (its health report's `agent.stuck`: the fleet refuses the agent
 * version it runs and it has none to go back to) is shown as such by the one fleet device view:
 * `llmesh device list` marks its agent version `STUCK` (and `--json` carries the reason as
 * `agent_stuck`), through the seed's real GET /devices over a message store; the dashboard's
 * device rows carry the same field. A device that is not stuck shows its version alone.
 * The dashboard's rendering of it is checked in Chromium (test/browser/dashboard.test.ts).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import { dashboardDevices } from '../../node/api/dashboard-fleet.ts'
import type { DaemonContext } from '../../node/daemon.ts'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import type { HealthReport } from '../../protocols/schemas/index.ts'
import { AutoEnrollmentLedger } from '../../seed/auto-enrollments.ts'
import { deviceRoutes } from '../../seed/device-routes.ts'
import { deviceKey, exampleEnrollment, exampleHealthReport } from '../fixtures/messages.ts'
import { cli, parseTable } from '../helpers/index.ts'
import { add } from './rollout-fakes.ts'

const WHY =
  'agent 0.9.1 is refused by the fleet but nothing to go back to: it needs 0.9.1 or later (min_agent_version of 0.9.1); installed: 0.9.0: below min_agent_version'

test('a stuck agent is shown in llmesh device list (text and --json) and in the dashboard rows', async (t) => {
  const [self, stuck, fine] = await Promise.all([deviceKey(), deviceKey(), deviceKey()])
  const store = new MessageStore({ logger: silentLogger() }, {})
  const now = Date.now()
  const report = (device: string, agent: HealthReport['agent']): HealthReport => ({
    ...exampleHealthReport({ device, window: { start: now - 2000, end: now - 1000 } }),
    agent,
  })
  for (const d of [stuck, fine]) {
    add(store, exampleEnrollment({ device: d.peerId, tags: ['pilot'], issued_at: now - 5000, expires_at: undefined }))
  }
  add(store, report(stuck.peerId, { version: '0.9.1', stuck: WHY }))
  add(store, report(fine.peerId, { version: '0.9.2' }))
  const ctx = {
    config: { fleet: 'test-fleet' },
    identity: { peerId: self.peerId },
    logger: silentLogger(),
    store,
    mesh: { state: 'stopped', peers: () => [] },
  } as unknown as DaemonContext
  const app = Fastify()
  // the list only: nothing is signed
  await app.register(deviceRoutes({ ctx, signer: {} as never, ledger: new AutoEnrollmentLedger() }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => app.close())
  const addr = app.server.address()
  const api = `127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`

  const [text, json] = await Promise.all([
    cli(['device', 'list', '--api', api]),
    cli(['device', 'list', '--api', api, '--json']),
  ])
  assert.equal(text.code, 0, text.stderr)
  const rows = new Map(parseTable(text.stdout).map((r) => [r.device, r]))
  assert.equal(rows.get(stuck.peerId)?.agent, '0.9.1 STUCK', text.stdout)
  assert.equal(rows.get(fine.peerId)?.agent, '0.9.2', text.stdout)
  assert.equal(json.code, 0, json.stderr)
  const listed = new Map(
    (
      JSON.parse(json.stdout) as { devices: Array<{ id: string; agent_version: string; agent_stuck: string | null }> }
    ).devices.map((d) => [d.id, d]),
  )
  assert.deepEqual(
    { version: listed.get(stuck.peerId)?.agent_version, stuck: listed.get(stuck.peerId)?.agent_stuck },
    { version: '0.9.1', stuck: WHY },
  )
  assert.equal(listed.get(fine.peerId)?.agent_stuck, null)

  // the dashboard's device rows: the same view
  const dash = new Map(dashboardDevices(store, self.peerId, now).map((d) => [d.id, d]))
  assert.equal(dash.get(stuck.peerId)?.agent_stuck, WHY)
  assert.equal(dash.get(fine.peerId)?.agent_stuck, null)
})
