/**
 * Issue 15 with real processes on loopback (mDNS off): a device runs under the wrapper
 * (`llmesh agent run`) from an agent root laid out like /opt/llmesh, its version 0.9.0 a tiny
 * launcher that runs this checkout's daemon. The operator publishes agent 0.9.1 (a package the
 * test builds: the same launcher) through the seed's API with `llmesh release publish-agent`; the
 * device fetches its chunks from the seed over the mesh, verifies and unpacks it beside 0.9.0,
 * switches `current`, exits for the wrapper, and 0.9.1 comes up and is confirmed (status,
 * /metrics `llmesh_agent_info`). Then a broken 0.9.2 (its launcher exits at start) is published:
 * the wrapper puts 0.9.1 back by itself, records the failure, and the device's next health report
 * carries it to the seed; 0.9.1's updater never takes 0.9.2 again.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { chmod, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { NODE_INFO_FILE } from '../../node/constants.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { silentLogger } from '../../node/logger.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { CLI_BIN, cli, POLICIES, parseTable, scaled, suiteTmpDir, waitFor } from '../helpers/index.ts'

const run = promisify(execFile)
const WORKING = `#!/bin/sh\nexec "${process.execPath}" --disable-warning=ExperimentalWarning "${CLI_BIN}" "$@"\n`
const BROKEN = '#!/bin/sh\necho "agent 0.9.2: broken on purpose" >&2\nexit 3\n'

/** Writes `<dir>/bin/llmesh` with `script`. */
async function launcher(dir: string, script: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true })
  await writeFile(join(dir, 'bin', 'llmesh'), script)
  await chmod(join(dir, 'bin', 'llmesh'), 0o755)
}

/** Builds `llmesh-<v>-linux-<arch>.tar.gz` (one top directory, as `npm run package` lays it out). */
async function fakePackage(home: string, version: string, script: string): Promise<string> {
  const top = `llmesh-${version}-linux-${process.arch}`
  const src = join(home, 'build', version)
  await launcher(join(src, top), script)
  await writeFile(join(src, top, 'MANIFEST.json'), JSON.stringify({ version, arch: process.arch }))
  const out = join(home, `${top}.tar.gz`)
  await run('tar', ['-czf', out, '-C', src, top])
  return out
}

interface Status {
  agent?: { version: string; state: string; failures: Array<{ version: string; reason: string }> }
}

describe('agent update through the mesh, with the wrapper', { timeout: scaled(300_000) }, () => {
  const home = suiteTmpDir('llmesh-agent-')
  const cleanups: Array<() => Promise<unknown>> = []
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {})
  })

  test('0.9.0 → 0.9.1 is fetched, switched to and confirmed; a broken 0.9.2 is rolled back by the wrapper', async () => {
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
    cleanups.push(() => seed.stop())
    const api = String(seed.apiUrl)

    // the agent root as install.sh lays it out: <root>/0.9.0, current -> 0.9.0
    const root = join(home, 'opt-llmesh')
    await launcher(join(root, '0.9.0'), WORKING)
    await symlink('0.9.0', join(root, 'current'))
    const data = join(home, 'device-data')
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LLMESH_')))
    const wrapper: ChildProcess = spawn(
      process.execPath,
      [
        CLI_BIN,
        'agent',
        'run',
        '--agent-root',
        root,
        '--agent-health-window',
        `${Math.round(scaled(90_000) / 1000)}s`,
        '--',
        'node',
        'start',
        '--fleet',
        fleetDir,
        '--data',
        data,
        '--api',
        '127.0.0.1:0',
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        '--no-mdns',
        '--bootstrap',
        seed.context.mesh.multiaddrs()[0] as string,
        '--report-interval',
        '2s',
        '--agent-update',
        '--agent-root',
        root,
      ],
      { cwd: home, env: { ...env, LLMESH_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let stderr = ''
    wrapper.stderr?.on('data', (b: Buffer) => {
      stderr = `${stderr}${b}`.slice(-16000)
    })
    const exited = new Promise((ok) => wrapper.once('exit', ok))
    cleanups.push(async () => {
      if (wrapper.exitCode === null) wrapper.kill('SIGTERM')
      await exited
    })
    const status = async (): Promise<Status | undefined> => {
      assert.equal(wrapper.exitCode, null, `the wrapper exited:\n${stderr}`)
      const text = await readFile(join(data, NODE_INFO_FILE), 'utf8').catch(() => '')
      if (text === '') return undefined
      const info = JSON.parse(text) as { api: string }
      const res = await fetch(`${info.api}/status`).catch(() => undefined)
      return res?.ok === true ? ((await res.json()) as Status) : undefined
    }
    const agentVersion = async () => (await status())?.agent?.version
    const detail = () => stderr.slice(-3000)
    await waitFor(async () => (await agentVersion()) === '0.9.0', { timeoutMs: 60_000, what: '0.9.0 up', detail })

    // 0.9.1: published through the seed's API, fetched over the mesh, switched to, confirmed
    const policy = join(home, 'policy.yaml')
    await writeFile(policy, POLICIES.ONE_STAGE)
    const pkg1 = await fakePackage(home, '0.9.1', WORKING)
    const t0 = Date.now()
    const pub = await cli([
      'release',
      'publish-agent',
      pkg1,
      '--version',
      '0.9.1',
      '--policy',
      policy,
      '--api',
      api,
      '--json',
    ])
    assert.equal(pub.code, 0, pub.stderr)
    assert.equal(
      (JSON.parse(pub.stdout) as { release: { min_agent_version: string } }).release.min_agent_version,
      '0.9.1',
    )
    await waitFor(async () => (await agentVersion()) === '0.9.1', { timeoutMs: 90_000, what: '0.9.1 up', detail })
    const upgradeMs = Date.now() - t0
    assert.equal(await readlink(join(root, 'current')), '0.9.1')
    await waitFor(async () => (await readFile(join(root, '.agent-pending.json')).catch(() => null)) === null, {
      timeoutMs: 30_000,
      what: '0.9.1 confirmed (pending record removed)',
    })
    const info = JSON.parse(await readFile(join(data, NODE_INFO_FILE), 'utf8')) as { api: string }
    const metrics = await (await fetch(`${info.api}/metrics`)).text()
    assert.match(metrics, /^llmesh_agent_info\{version="0\.9\.1"\} 1$/m)
    const shown = await cli(['status', '--data', data])
    assert.match(shown.stdout, /^agent {3}0\.9\.1 \(updates on/m, shown.stdout)
    // a duplicate is refused by the seed (the model releases' rule)
    const dup = await cli(['release', 'publish-agent', pkg1, '--version', '0.9.1', '--api', api])
    assert.notEqual(dup.code, 0)
    assert.match(dup.stderr, /ERR_VERSION_EXISTS|exists/)

    // 0.9.2 exits at start: the wrapper switches back to 0.9.1 by itself and records why
    const pkg2 = await fakePackage(home, '0.9.2', BROKEN)
    const t1 = Date.now()
    const pub2 = await cli(['release', 'publish-agent', pkg2, '--version', '0.9.2', '--api', api])
    assert.equal(pub2.code, 0, pub2.stderr)
    await waitFor(
      async () => {
        const s = await status()
        return s?.agent?.version === '0.9.1' && s.agent.failures.some((f) => f.version === '0.9.2')
      },
      { timeoutMs: 120_000, what: '0.9.1 back, with 0.9.2 recorded as failed', detail },
    )
    const rollbackMs = Date.now() - t1
    assert.equal(await readlink(join(root, 'current')), '0.9.1')
    assert.match(stderr, /agent version rolled back/)
    // the fleet hears of it: a signed health report of the device carries the failure
    await waitFor(
      () =>
        seed.context.store
          .list('HealthReport')
          .some(
            (r) => r.message.agent?.version === '0.9.1' && r.message.agent.failures?.some((f) => f.version === '0.9.2'),
          ),
      { timeoutMs: 30_000, what: 'a health report carrying the 0.9.2 failure at the seed' },
    )
    // …and counts it once as a rollback of llmesh-agent@0.9.2, the event form the gates read
    await waitFor(
      () =>
        seed.context.store
          .list('HealthReport')
          .some((r) => r.message.events.some((e) => e.model === 'llmesh-agent' && e.version === '0.9.2')),
      { timeoutMs: 30_000, what: 'a rollbacks event of llmesh-agent@0.9.2 at the seed' },
    )
    const events = seed.context.store
      .list('HealthReport')
      .flatMap((r) => r.message.events)
      .filter((e) => e.model === 'llmesh-agent' && e.version === '0.9.2')
    assert.deepEqual(
      events.map((e) => e.counts.rollbacks),
      [1],
      'counted once',
    )
    const list = await cli(['device', 'list', '--api', api])
    assert.ok(
      parseTable(list.stdout).some((r) => r.agent === '0.9.1'),
      list.stdout,
    )
    // 0.9.1's updater does not take 0.9.2 again
    const s = await status()
    assert.equal(s?.agent?.state, 'failed')
    assert.equal(await readlink(join(root, 'current')), '0.9.1')
    console.log(
      `# agent upgrade 0.9.0→0.9.1 ${upgradeMs} ms after publish; 0.9.2 rolled back ${rollbackMs} ms after publish`,
    )
  })
})
