/**
 * Issue 15's acceptance in network namespaces, with every node running from the installed package
 * (in the default suite: ~2.5 minutes on 2 cores; it builds the x64 package once per source
 * state, test/package/build.ts). A seed and four devices, each in its own namespace with its own
 * root made by the package's install.sh (`--root`), found by mDNS only (no bootstrap), the devices
 * started as their unit starts them: the installed wrapper `llmesh agent run` over
 * `<root>/opt/llmesh/current`, which execs the daemon in its own process (one process a device,
 * checked). Every device serves a tiny model; d1 is tagged pilot, d2 canary.
 * 1. d4 goes off. Agent 0.1.1 (the built package with only its version bumped) goes pilot (d1) →
 *    canary (d2) → full (d3) while a client in a fifth namespace loops on chat completions on
 *    each of them: every device ends on 0.1.1 (`current`, the daemon's program, `llmesh
 *    --version`, /status), and the failed requests during the switch are counted.
 * 2. Agent 0.1.2, a package whose agent exits at start: the pilot's wrapper puts 0.1.1 back by
 *    itself, the fleet aborts the release, and no other device installs or starts 0.1.2.
 * 3. d4 comes back on 0.1.0 and catches up to 0.1.1 (never 0.1.2).
 */
import assert from 'node:assert/strict'
import { readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { AGENT_LINEAGE } from '../../protocols/agent/constants.ts'
import { writeTinyGguf } from '../fixtures/gguf-writer.ts'
import { POLICIES, scaled, waitFor } from '../helpers/index.ts'
import { type AgentStatus, BROKEN, fakePackage } from '../mesh/agent-helpers.ts'
import { BUILD_TEST_TIMEOUT_MS, ensurePackage } from '../package/build.ts'
import {
  bumpedPackage,
  cliProcesses,
  currentOf,
  extractPackage,
  type InstalledNode,
  installNode,
  PACKAGED_ENTRY,
  runningEntries,
  startInstalled,
  versionsOf,
  versionsStarted,
} from './agent-bed.ts'
import { inviteFor, makeFleetDir } from './helpers.ts'
import { badLines, canRunBed, REPO_ROOT, TestBed, until } from './netns.ts'
import { rolloutOf, serving, statusOf } from './rollout-bed.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'
const LOAD = join(REPO_ROOT, 'test', 'lan', 'load-client.ts')
const TAGS = [['pilot'], ['canary'], [], []]
/**
 * min_reports counts the devices of the cumulative cohort that report running the version: 2 makes
 * the canary stage wait for its own device (d2) on the new version, not only the pilot's reports.
 */
const AGENT_POLICY = `
stages:
  - { name: pilot, tags: [pilot], window: 5s }
  - { name: canary, tags: [canary], window: 5s }
  - { name: full, percent: 100 }
gates:
  min_reports: 2
exclude_tags: [seed]
`

/** What the load client printed last for each URL. */
type LoadCounts = Map<string, { ok: number; failed: number; gapMs: number }>

describe('agent releases on devices running from installed packages', {
  skip,
  timeout: BUILD_TEST_TIMEOUT_MS + scaled(600_000),
}, () => {
  let bed: TestBed | undefined
  after(async () => {
    await bed?.destroy()
    // the roots, the unpacked packages and the bumped one hold ~2.5 GB: the logs stay for inspection, they go
    if (bed === undefined) return
    for (const f of await readdir(bed.logDir)) {
      if (!f.endsWith('.log')) await rm(join(bed.logDir, f), { recursive: true, force: true })
    }
  })

  test('0.1.1 pilot → canary → full while serving, a broken 0.1.2 rolled back and aborted, an offline device catches up', async () => {
    const t0 = Date.now()
    const { tarball, manifest } = await ensurePackage('x64')
    const v0 = manifest.version
    const [v1, v2] = [bump(v0, 1), bump(v0, 2)]
    bed = await TestBed.create({ hosts: 6 })
    const work = bed.logDir
    const fleet = await makeFleetDir(work)
    const pkgDir = await extractPackage(tarball, join(work, 'pkg'))
    const common = { listen: ['/ip4/0.0.0.0/tcp/4001'], api_insecure: true, report_interval: '1s' }
    const settings = (i: number) => ({ ...common, api: `${bed!.hosts[i].ip}:7420` })

    const seed = await installNode(bed, bed.hosts[0], {
      name: 'seed',
      role: 'seed',
      pkgDir,
      work,
      fleetDir: fleet.dir,
      settings: { ...settings(0), tags: ['seed'] },
    })
    await startInstalled(bed, seed)
    const devices: InstalledNode[] = []
    for (const [i, tags] of TAGS.entries()) {
      const name = `d${i + 1}`
      const invite = await inviteFor(fleet.dir, join(work, name), tags.length > 0 ? ['--tags', tags.join(',')] : [])
      // `agent_health_window`: the new version must be up (daemon started) within it on a loaded machine
      const own = { ...settings(i + 1), name, tags, agent_health_window: `${scaled(60)}s` }
      const d = await installNode(bed, bed.hosts[i + 1], {
        name,
        role: 'node',
        pkgDir,
        work,
        fleetDir: fleet.dir,
        invite,
        settings: own,
      })
      devices.push(await startInstalled(bed, d))
    }
    const nodes = [seed, ...devices]
    const installedMs = Date.now() - t0
    await until(
      async () =>
        (await Promise.all(nodes.map((n) => statusOf(bed!, n)))).every(
          (s) => s.devices.filter((d) => d.enrolled).length >= nodes.length,
        ),
      90_000,
      'every node sees every enrollment (found by mDNS)',
    )
    const llmesh = join(seed.opt, 'current', 'bin', 'llmesh')
    const operator = (...args: string[]) =>
      bed!.exec(seed.host, llmesh, [...args, '--api', seed.info.api, '--json'], 300_000)
    const policyFile = async (name: string, text: string) => {
      const f = join(work, `${name}.yaml`)
      await writeFile(f, text)
      return f
    }
    const gguf = join(work, 'tiny.gguf')
    await writeTinyGguf(gguf, { layers: 2, embd: 64 })
    await operator(
      'release',
      'publish',
      gguf,
      '--model',
      'tiny',
      '--version',
      '1.0.0',
      '--policy',
      await policyFile('model', POLICIES.ONE_STAGE_EXCEPT('seed')),
    )
    const agentOf = async (d: InstalledNode) => ((await statusOf(bed!, d)) as { agent?: AgentStatus }).agent
    const servingOn = async (d: InstalledNode, agent: string) => {
      const s = await statusOf(bed!, d)
      return (s as { agent?: AgentStatus }).agent?.version === agent && serving(s, '1.0.0')
    }
    for (const d of devices) await until(() => servingOn(d, v0), 120_000, `${d.name} serving the model on ${v0}`)
    // one process in the steady state: the unit's main process (the wrapper) became the daemon
    for (const d of devices) {
      const p = await cliProcesses(d)
      assert.deepEqual(p, { daemon: [d.proc.child.pid], wrapper: [] }, `${d.name}: the wrapper handed over`)
    }

    // 1. d4 off; 0.1.1 through the stages under a chat load on d1..d3
    const [d1, d2, d3, d4] = devices as [InstalledNode, InstalledNode, InstalledNode, InstalledNode]
    await bed.terminate(d4.proc)
    const online = [d1, d2, d3]
    const load = bed.spawn(bed.hosts[5], 'load-client', process.execPath, [
      LOAD,
      '--chat',
      ...['--max-tokens', '4', '--pause-ms', '100'],
      ...online.map((d) => `${d.info.api}/v1`),
    ])
    const pkg1 = await bumpedPackage(tarball, work, v0, v1)
    const p1 = Date.now()
    await operator(
      'release',
      'publish-agent',
      pkg1,
      '--version',
      v1,
      '--policy',
      await policyFile('agent', AGENT_POLICY),
    )
    for (const d of online) await until(() => servingOn(d, v1), 300_000, `${d.name} serving the model on ${v1}`)
    const rolledMs = Date.now() - p1
    await bed.terminate(load)
    const counts = lastCounts(load.stdout)
    // the order of the stages: each switch came after the previous stage's device switched
    const switched = online.map(
      (d) => d.proc.logs.find((l) => l.msg === 'agent switched: restarting' && l.version === v1)?.time ?? Number.NaN,
    )
    assert.ok(switched[0] < switched[1] && switched[1] < switched[2], `switch times ${switched.join(', ')}`)
    // requests the new daemons answered through a peer while their own model was loading
    const forwarded = await Promise.all(online.map((d) => forwardedOk(bed!, d)))
    const r1 = await rolloutOf(bed, d3, v1, AGENT_LINEAGE)
    assert.equal(r1?.state, 'promoted', JSON.stringify(r1))
    const ids = devices.map((d) => d.info.peerId)
    assert.deepEqual([r1?.cohorts.pilot, r1?.cohorts.canary], [[ids[0]], [ids[1]]])
    for (const d of online) {
      assert.equal(await currentOf(d), v1)
      assert.deepEqual(
        await runningEntries(d),
        [join(d.opt, v1, 'app', 'cli', PACKAGED_ENTRY)],
        `${d.name}'s daemon program`,
      )
      const { stdout } = await bed.exec(d.host, join(d.root, 'usr', 'local', 'bin', 'llmesh'), ['--version'])
      assert.equal(stdout.trim(), v1, `${d.name}: llmesh --version`)
      const c = counts.get(`${d.info.api}/v1`)
      assert.ok(c !== undefined && c.ok > 0, `${d.name} answered chat completions: ${JSON.stringify(c)}`)
    }

    // 2. a broken 0.1.2: rolled back by the pilot's wrapper, aborted by the fleet, nowhere else
    const pkg2 = await fakePackage(work, v2, BROKEN(v2))
    const p2 = Date.now()
    await operator(
      'release',
      'publish-agent',
      pkg2,
      '--version',
      v2,
      '--policy',
      await policyFile('broken', AGENT_POLICY),
    )
    await until(
      async () => (await agentOf(d1))?.failures.some((f) => f.version === v2) === true,
      180_000,
      `${v2} rolled back on the pilot`,
    )
    const rollbackMs = Date.now() - p2
    for (const n of [seed, ...online]) {
      await until(
        async () => (await rolloutOf(bed!, n, v2, AGENT_LINEAGE))?.state === 'aborted',
        120_000,
        `${v2} aborted as ${n.name} sees it`,
      )
    }
    const abortMs = Date.now() - p2
    await until(() => servingOn(d1, v1), 120_000, `the pilot serving on ${v1} again`)
    // the wrapper exec'd the version it put back: the pilot is one process again
    assert.deepEqual(await cliProcesses(d1), { daemon: [d1.proc.child.pid], wrapper: [] }, 'd1 after the rollback')
    assert.deepEqual(versionsStarted(d1, bed.processes), [v0, v1, v2, v1], "the pilot's wrapper: what it started")
    assert.equal(await currentOf(d1), v1)
    assert.deepEqual((await rolloutOf(bed, d1, v2, AGENT_LINEAGE))?.cohorts.pilot, [ids[0]])
    // no device but the pilot ever held or started it
    const neverBroken = async (d: InstalledNode) => {
      assert.deepEqual(await versionsOf(d), [v0, v1], `${d.name}: versions under its agent root`)
      assert.ok(!versionsStarted(d, bed!.processes).includes(v2), `${d.name} started ${v2}`)
      assert.deepEqual((await agentOf(d))?.failures, [], `${d.name}: rollbacks`)
    }
    for (const d of [d2, d3]) await neverBroken(d)

    // 3. d4 comes back on 0.1.0 and catches up to 0.1.1, never starting 0.1.2 (fails at once if it does)
    assert.equal(await currentOf(d4), v0)
    const p3 = Date.now()
    await startInstalled(bed, d4)
    await waitFor(
      async () => {
        if (versionsStarted(d4, bed!.processes).includes(v2)) throw new Error(`d4 started ${v2}`)
        return servingOn(d4, v1).catch(() => false)
      },
      { timeoutMs: 300_000, what: `d4 serving the model on ${v1}`, intervalMs: 250 },
    )
    const catchUpMs = Date.now() - p3
    assert.equal(await currentOf(d4), v1)
    assert.deepEqual(await runningEntries(d4), [join(d4.opt, v1, 'app', 'cli', PACKAGED_ENTRY)])
    await neverBroken(d4)
    // nothing went wrong beside what the test did (the pilot's rollback is a warning)
    for (const p of bed.processes) assert.deepEqual(badLines(p), [], `${p.name}: errors logged`)
    const figures = online.map((d, i) => {
      const c = counts.get(`${d.info.api}/v1`)
      // where the gap goes: the old daemon's stop to the new one's start, and to its model loaded
      const after = (msg: string) => d.proc.logs.find((l) => l.msg === msg && (l.time ?? 0) > switched[i])?.time
      const [up, ready] = [after('llmesh node started'), after('model ready')]
      return `${d.name} ${c?.failed} failed / ${c?.ok} ok, longest gap ${c?.gapMs} ms (new daemon up ${(up ?? Number.NaN) - switched[i]} ms, its model ready ${(ready ?? Number.NaN) - switched[i]} ms after the switch, ${forwarded[i]} answered through a peer meanwhile)`
    })
    console.log(
      `# installed and up ${installedMs} ms; ${v1} on d1..d3 ${rolledMs} ms after publish (chat completions: ${figures.join('; ')}); ${v2} rolled back on the pilot ${rollbackMs} ms, aborted ${abortMs} ms after publish; d4 caught up ${catchUpMs} ms after its start`,
    )
  })
})

/** The version `n` patch levels above `version` (`0.1.0` → `0.1.1`). */
function bump(version: string, n: number): string {
  const [major, minor, patch] = version.split(/[.+-]/)
  return `${major}.${minor}.${Number(patch) + n}`
}

/** `llmesh_forwarded_requests_total{direction="out",outcome="ok"}` of a node's /metrics. */
async function forwardedOk(bed: TestBed, n: InstalledNode): Promise<number> {
  const stdout = await bed.get(n.host, `${n.info.api}/metrics`)
  const m = /^llmesh_forwarded_requests_total\{direction="out",outcome="ok"\} (\d+)$/m.exec(stdout)
  return Number(m?.[1] ?? 0)
}

function lastCounts(stdout: string): LoadCounts {
  const out: LoadCounts = new Map()
  for (const line of stdout.split('\n').filter((l) => l.startsWith('{'))) {
    const e = JSON.parse(line) as { url: string; ok: number; failed: number; gapMs: number }
    out.set(e.url, e)
  }
  return out
}
