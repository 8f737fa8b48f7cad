/**
 * Issue 15 with real processes on loopback (mDNS off): two devices run under the wrapper
 * (`llmesh agent run`) from agent roots laid out like /opt/llmesh, their version 0.9.0 a tiny
 * launcher that runs this checkout's daemon; `pilot` is tagged pilot, `other` is not. Agent
 * releases go through the rollout stages like model releases (pilot, then everyone):
 * - 0.9.1, published through the seed's API with `llmesh release publish-agent` as one release
 *   for two architectures (the other architecture's package exits at start): the pilot fetches
 *   its own architecture's chunks over the mesh, unpacks it beside 0.9.0, switches `current`, exits for the wrapper
 *   and comes up on 0.9.1; only once a pilot report shows 0.9.1 running does a promote verdict
 *   let `other` take it (no report of `other` claims 0.9.1 before that verdict).
 * - 0.9.2 exits at start. The pilot fetches it, then the seed goes offline; the pilot's wrapper
 *   puts 0.9.1 back by itself, its next health report counts a rollback of `llmesh-agent@0.9.2`,
 *   the devices abort the release among themselves, and `other` never installs 0.9.2.
 * The pilot runs as the device unit runs it (`agent_handover`: its wrapper execs the daemon, which
 * execs the wrapper again when it switches), `other` with the wrapper as the daemon's parent.
 */
import assert from 'node:assert/strict'
import { lstat, readFile, readlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { NODE_INFO_FILE } from '../../node/constants.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { silentLogger } from '../../node/logger.ts'
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { cli, POLICIES, parseTable, scaled, suiteTmpDir, waitFor } from '../helpers/index.ts'
import { freePort } from '../helpers/ports.ts'
import { type AgentDevice, BROKEN, fakePackage, startAgentDevice, WORKING } from './agent-helpers.ts'

const exists = async (p: string) => (await lstat(p).catch(() => null)) !== null

describe('agent releases through the mesh, under the rollout stages', { timeout: scaled(480_000) }, () => {
  const home = suiteTmpDir('llmesh-agent-')
  const cleanups: Array<() => Promise<unknown>> = []
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {})
  })

  test('0.9.1 goes to the pilot first, then to the other device; a broken 0.9.2 is rolled back on the pilot and aborted for the rest with the seed offline', async () => {
    const fleetDir = join(home, 'fleet')
    assert.equal((await cli(['fleet', 'init', fleetDir, '--fleet-id', 'agent-fleet', '--auto-enroll'])).code, 0)
    const fleet = await loadFleet(fleetDir)
    assert.ok(fleet.operatorSigner)
    const seed = createSeedDaemon({
      fleet: { id: fleet.root.fleet, psk: fleet.swarmKey, trust: fleet.root, chain: fleet.chain },
      dataDir: join(home, 'seed-data'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      api: '127.0.0.1:0',
      mdns: false,
      tags: ['seed'],
      signer: fleet.operatorSigner,
      antiEntropy: { intervalMs: 1000 },
      logger: silentLogger(),
    })
    await seed.start()
    let seedUp = true
    cleanups.push(() => (seedUp ? seed.stop() : Promise.resolve()))
    const api = String(seed.apiUrl)
    const seedAddr = seed.context.mesh.multiaddrs()[0] as string

    // each device dials the seed and the other one (fixed ports: redialed after each restart)
    const [pPort, oPort] = [await freePort(), await freePort()]
    const at = (port: number) => `/ip4/127.0.0.1/tcp/${port}`
    const pilot = await startAgentDevice(home, {
      name: 'pilot',
      fleetDir,
      port: pPort,
      bootstrap: [seedAddr, at(oPort)],
      tags: ['pilot'],
      // as the device unit runs it: one process when no version is on probation
      handover: true,
    })
    cleanups.push(() => pilot.stop())
    const other = await startAgentDevice(home, {
      name: 'other',
      fleetDir,
      port: oPort,
      bootstrap: [seedAddr, at(pPort)],
    })
    cleanups.push(() => other.stop())
    const detail = (d: AgentDevice) => () => d.stderr().slice(-3000)
    const on = async (d: AgentDevice, v: string) => (await d.agent())?.version === v
    for (const d of [pilot, other]) {
      await waitFor(() => on(d, '0.9.0'), { timeoutMs: 60_000, what: `${d.name} up on 0.9.0`, detail: detail(d) })
    }
    assert.equal(await pilot.oneProcess(), true, 'the pilot: its wrapper exec’d the daemon')
    assert.equal(await other.oneProcess(), false, 'the other device: wrapper and daemon (no handover)')
    const [pilotId, otherId] = [await pilot.peerId(), await other.peerId()]
    await waitFor(() => [pilotId, otherId].every((id) => seed.context.store.isEnrolled(id, Date.now())), {
      timeoutMs: 30_000,
      what: 'both devices enrolled',
    })

    // 0.9.1: pilot stage first (its window passes once the pilot reports 0.9.1), then everyone
    const policy = join(home, 'policy.yaml')
    await writeFile(policy, POLICIES.PILOT_THEN_ALL('5s', 1))
    const pkg1 = await fakePackage(home, '0.9.1', WORKING)
    // one release for two architectures: the other one's package exits at start, so a device that
    // took a package not built for its own architecture would roll it back and fail the test
    const foreignArch = process.arch === 'arm64' ? 'x64' : 'arm64'
    const foreign = await fakePackage(home, '0.9.1', BROKEN('0.9.1'), foreignArch)
    const t0 = Date.now()
    const publish = (pkgs: string[], v: string) =>
      cli(['release', 'publish-agent', ...pkgs, '--version', v, '--policy', policy, '--api', api, '--json'])
    const pub = await publish([pkg1, foreign], '0.9.1')
    assert.equal(pub.code, 0, pub.stderr)
    const rel1 = (
      JSON.parse(pub.stdout) as { release: { min_agent_version: string; packages: Array<{ arch: string }> } }
    ).release
    assert.equal(
      rel1.min_agent_version,
      '0.9.0',
      'the default min_agent_version is the first version of the semver line',
    )
    assert.deepEqual(
      rel1.packages.map((p) => p.arch),
      [process.arch, foreignArch],
    )
    await waitFor(() => on(pilot, '0.9.1'), { timeoutMs: 90_000, what: 'pilot on 0.9.1', detail: detail(pilot) })
    const pilotMs = Date.now() - t0
    await waitFor(() => on(other, '0.9.1'), { timeoutMs: 90_000, what: 'other on 0.9.1', detail: detail(other) })
    const otherMs = Date.now() - t0
    for (const d of [pilot, other]) {
      assert.equal(await readlink(join(d.root, 'current')), '0.9.1')
      await waitFor(async () => !(await exists(join(d.root, '.agent-pending.json'))), {
        timeoutMs: 30_000,
        what: `${d.name}: 0.9.1 confirmed (pending record removed)`,
      })
    }
    // the order is the rollout's: the promotion came after a pilot report running 0.9.1, and no
    // report of the other device ran 0.9.1 before the promotion
    const verdicts = seed.context.store
      .list('Verdict')
      .filter(
        (v) => v.message.model === AGENT_LINEAGE && v.message.version === '0.9.1' && v.message.outcome === 'promote',
      )
    assert.ok(verdicts.length > 0, 'a promote verdict of llmesh-agent@0.9.1')
    const promotedAt = Math.min(...verdicts.map((v) => v.message.decided_at))
    const reports = seed.context.store.list('HealthReport').map((r) => r.message)
    assert.ok(
      reports.some((r) => r.device === pilotId && r.agent?.version === '0.9.1' && r.window.end <= promotedAt),
      'a pilot report running 0.9.1 before the promotion',
    )
    const early = reports.filter(
      (r) => r.device === otherId && r.agent?.version === '0.9.1' && r.window.start < promotedAt,
    )
    assert.deepEqual(early, [], 'the other device ran 0.9.1 before the promotion')
    const info = JSON.parse(await readFile(join(other.data, NODE_INFO_FILE), 'utf8')) as { api: string }
    assert.match(await (await fetch(`${info.api}/metrics`)).text(), /^llmesh_agent_info\{version="0\.9\.1"\} 1$/m)
    const shown = await cli(['status', '--data', other.data])
    assert.match(shown.stdout, /^agent {3}0\.9\.1 \(updates on/m, shown.stdout)
    const list = await cli(['device', 'list', '--api', api])
    assert.ok(
      parseTable(list.stdout).some((r) => r.agent === '0.9.1'),
      list.stdout,
    )
    const agents = await cli(['release', 'agents', '--api', api, '--json'])
    assert.deepEqual(
      (
        JSON.parse(agents.stdout) as { releases: Array<{ version: string; archs: string[]; state?: string }> }
      ).releases.map((r) => [r.version, r.archs, r.state]),
      [['0.9.1', [process.arch, foreignArch], 'promoted']],
      agents.stdout,
    )
    const status = await cli(['rollout', 'status', '--api', api, '--json'])
    assert.match(status.stdout, /"model": ?"llmesh-agent"/, status.stdout.slice(0, 2000))
    // a duplicate is refused by the seed (the model releases' rule)
    const dup = await cli(['release', 'publish-agent', pkg1, '--version', '0.9.1', '--api', api])
    assert.notEqual(dup.code, 0)
    assert.match(dup.stderr, /ERR_VERSION_EXISTS|exists/)

    // 0.9.2 exits at start: only the pilot is admitted; once it holds the package, the seed goes
    const pkg2 = await fakePackage(home, '0.9.2', BROKEN('0.9.2'))
    const t1 = Date.now()
    const pub2 = await publish([pkg2], '0.9.2')
    assert.equal(pub2.code, 0, pub2.stderr)
    await waitFor(() => exists(join(pilot.root, '0.9.2', 'bin', 'llmesh')), {
      timeoutMs: 90_000,
      what: 'the pilot unpacked 0.9.2',
      detail: detail(pilot),
    })
    await seed.stop()
    seedUp = false
    await waitFor(
      async () => {
        const a = await pilot.agent()
        return a?.version === '0.9.1' && a.failures.some((f) => f.version === '0.9.2')
      },
      { timeoutMs: 120_000, what: 'pilot back on 0.9.1, with 0.9.2 recorded as failed', detail: detail(pilot) },
    )
    const rollbackMs = Date.now() - t1
    assert.match(pilot.stderr(), /agent version rolled back/)
    // counted once on the pilot's /metrics (alert LlmeshAgentRollback)
    const pilotApi = (JSON.parse(await readFile(join(pilot.data, NODE_INFO_FILE), 'utf8')) as { api: string }).api
    assert.match(
      await (await fetch(`${pilotApi}/metrics`)).text(),
      /^llmesh_agent_rollbacks_total\{version="0\.9\.2"\} 1$/m,
    )
    // the devices abort it among themselves: the pilot's signed report is the evidence
    for (const d of [other, pilot]) {
      await waitFor(async () => (await d.release(AGENT_LINEAGE, '0.9.2'))?.state === 'aborted', {
        timeoutMs: 60_000,
        what: `llmesh-agent@0.9.2 aborted as seen by ${d.name} (seed offline)`,
        detail: detail(d),
      })
    }
    const abortMs = Date.now() - t1
    const seen = await other.release(AGENT_LINEAGE, '0.9.2')
    assert.deepEqual(seen?.cohorts.pilot, [pilotId])
    assert.deepEqual(
      seen?.failures?.failed.map((f) => [f.device, f.reasons]),
      [[pilotId, ['local rollback']]],
    )
    // no device outside the pilot ever installed it; the pilot's updater does not take it again
    assert.equal(await exists(join(other.root, '0.9.2')), false)
    // its updater looks again within a second of the abort and says why it waits
    await waitFor(async () => (await other.agent())?.reason === 'aborted by the fleet', {
      timeoutMs: 10_000,
      what: "the other device's updater: 0.9.2 aborted",
    })
    const o = await other.agent()
    assert.equal(o?.version, '0.9.1')
    assert.deepEqual([o?.state, o?.target], ['waiting', '0.9.2'])
    assert.equal((await pilot.agent())?.state, 'failed')
    for (const d of [pilot, other]) assert.equal(await readlink(join(d.root, 'current')), '0.9.1')
    // after the rollback, the wrapper exec'd the previous version: one process again
    assert.equal(await pilot.oneProcess(), true, 'the pilot after the rollback: one process')
    console.log(
      `# agent 0.9.1: pilot ${pilotMs} ms, other ${otherMs} ms after publish; 0.9.2 rolled back on the pilot ${rollbackMs} ms, aborted fleet-wide ${abortMs} ms after publish`,
    )
  })
})
