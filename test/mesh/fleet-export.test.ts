/**
 * `llmesh fleet export --device <dir>`: the directory holds the trust root, the join secret, an
 * invite and an llmesh.yaml pointing at them, secrets 0600, and nothing of the operator key; a
 * real `llmesh node start --config <dir>/llmesh.yaml` process (loopback, mDNS off, the seed dialled
 * directly, all from the exported file) is enrolled by its invite with the invite's tags and name,
 * and declares that name in its hello (shown by `llmesh device list`); the file's
 * inference_concurrency, inference_queue and keep_versions reach its supervisor and installer
 * (`/status`).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { NODE_INFO_FILE } from '../../node/constants.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { silentLogger } from '../../node/logger.ts'
import { createSeedDaemon } from '../../seed/seed-daemon.ts'
import { CLI_BIN, cli, parseTable, scaled, suiteTmpDir } from '../helpers/index.ts'
import { waitFor } from './fixtures.ts'

describe('llmesh fleet export', { timeout: scaled(240_000) }, () => {
  const home = suiteTmpDir('llmesh-export-')
  const fleetDir = join(home, 'fleet')
  const cleanups: Array<() => Promise<unknown>> = []
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {})
  })

  test('the exported directory: exactly four files, secrets 0600, no operator key', async () => {
    assert.equal((await cli(['fleet', 'init', fleetDir, '--fleet-id', 'export-fleet'])).code, 0)
    const dev = join(home, 'dev-a')
    const r = await cli(['fleet', 'export', fleetDir, '--device', dev, '--invite-tags', 'pilot', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const report = JSON.parse(r.stdout) as { invite: { tags: string[] } | null; warning: string | null }
    assert.deepEqual(report.invite?.tags, ['pilot'])
    assert.equal(report.warning, null)
    assert.deepEqual((await readdir(dev)).sort(), ['invite', 'llmesh.yaml', 'swarm.key', 'trust-root.json'])
    const modes = Object.fromEntries(
      await Promise.all(
        ['invite', 'llmesh.yaml', 'swarm.key', 'trust-root.json', '.'].map(
          async (f) => [f, ((await stat(join(dev, f))).mode & 0o777).toString(8)] as const,
        ),
      ),
    )
    assert.deepEqual(modes, {
      invite: '600',
      'llmesh.yaml': '644',
      'swarm.key': '600',
      'trust-root.json': '644',
      '.': '700',
    })
    // not a line of the operator key's PEM (nor its DER in one base64 piece) anywhere
    const pem = await readFile(join(fleetDir, 'operator.key'), 'utf8')
    const body = pem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'))
    for (const f of await readdir(dev)) {
      const text = await readFile(join(dev, f), 'utf8')
      assert.doesNotMatch(text, /PRIVATE KEY/, f)
      for (const line of body) assert.ok(!text.includes(line), `${f} holds a line of operator.key`)
      assert.ok(!text.includes(body.join('')), `${f} holds operator.key`)
    }
    assert.deepEqual(await readFile(join(dev, 'swarm.key')), await readFile(join(fleetDir, 'swarm.key')))
    // the export is a fleet directory a device can load, without an operator key
    const loaded = await loadFleet(dev)
    assert.equal(loaded.operatorSigner, undefined)
    assert.equal(loaded.root.fleet, 'export-fleet')
    // refusals: an existing directory, a device's copy cannot sign an invite, the operator key never in --set
    const again = await cli(['fleet', 'export', fleetDir, '--device', dev])
    assert.equal(again.code, 1)
    assert.match(again.stderr, /\[ERR_EXISTS\]/)
    const noKey = await cli(['fleet', 'export', dev, '--device', join(home, 'dev-x')])
    assert.match(noKey.stderr, /\[ERR_NO_OPERATOR_KEY\]/)
    const setKey = await cli(['fleet', 'export', fleetDir, '--device', join(home, 'dev-y'), '--set', 'operator_key=k'])
    assert.equal(setKey.code, 2, setKey.stderr)
    const badSet = await cli(['fleet', 'export', fleetDir, '--device', join(home, 'dev-y'), '--set', 'keep_versions=1'])
    assert.match(badSet.stderr, /keep_versions must be at least 2/)
    // without an invite (labs), it warns that the device will be pending
    const lab = await cli(['fleet', 'export', fleetDir, '--device', join(home, 'dev-z'), '--no-invite', '--json'])
    assert.equal(lab.code, 0, lab.stderr)
    assert.match((JSON.parse(lab.stdout) as { warning: string }).warning, /pending/)
    assert.deepEqual((await readdir(join(home, 'dev-z'))).sort(), ['llmesh.yaml', 'swarm.key', 'trust-root.json'])
  })

  test('a device started from the exported llmesh.yaml is enrolled by its invite', async () => {
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
    const dev = join(home, 'dev-b')
    const seedAddr = seed.context.mesh.multiaddrs()[0] as string
    const exported = await cli([
      'fleet',
      'export',
      fleetDir,
      '--device',
      dev,
      '--invite-tags',
      'pilot,shop-7',
      '--name',
      'till-7',
      '--set',
      'mdns=false',
      '--set',
      'listen=/ip4/127.0.0.1/tcp/0',
      '--set',
      'api=127.0.0.1:0',
      '--set',
      `bootstrap=${seedAddr}`,
      '--set',
      'data=node-data',
      '--set',
      'tags=declared-only',
      '--set',
      'inference_concurrency=3',
      '--set',
      'inference_queue=5',
      '--set',
      'keep_versions=4',
    ])
    assert.equal(exported.code, 0, exported.stderr)
    // the device runs from the exported file alone: no flag, no LLMESH_* variable (cwd elsewhere)
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LLMESH_')))
    const child: ChildProcess = spawn(
      process.execPath,
      [CLI_BIN, 'node', 'start', '--config', join(dev, 'llmesh.yaml')],
      { cwd: home, env: { ...env, LLMESH_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let stderr = ''
    child.stderr?.on('data', (b: Buffer) => {
      stderr = `${stderr}${b}`.slice(-8000)
    })
    const exited = new Promise((ok) => child.once('exit', ok))
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
    })
    let info = { peerId: '', api: '' }
    await waitFor(
      async () => {
        assert.equal(child.exitCode, null, `the device exited:\n${stderr}`)
        const text = await readFile(join(dev, 'node-data', NODE_INFO_FILE), 'utf8').catch(() => '')
        if (text !== '') info = JSON.parse(text) as typeof info
        return info.peerId !== ''
      },
      60_000,
      'the device started',
    )
    const peer = info.peerId
    // the file's inference and keep-versions settings reach the running supervisor and installer
    const status = (await (await fetch(`${info.api}/status`)).json()) as {
      inference: { max_concurrent: number; max_queue: number; threads: number | null }
      install: { keep_versions: number }
    }
    assert.deepEqual(
      { ...status.inference, keep: status.install.keep_versions },
      { ...status.inference, max_concurrent: 3, max_queue: 5, threads: null, keep: 4 },
    )
    await waitFor(
      () => seed.context.store.isEnrolled(peer),
      60_000,
      'the device enrolled by its invite',
      () => stderr,
    )
    const enrollment = seed.context.store.enrollmentOf(peer)
    assert.deepEqual(enrollment?.tags, ['pilot', 'shop-7'], 'the invite’s tags, not the declared ones')
    assert.equal(enrollment?.name, 'till-7')
    // the device declares the name of its llmesh.yaml too, and the operator's list shows it next to the id
    await waitFor(() => seed.context.mesh.antiEntropy.hellos.get(peer)?.name === 'till-7', 60_000, 'the named hello')
    const list = await cli(['device', 'list', '--api', String(seed.apiUrl)])
    assert.equal(parseTable(list.stdout).find((r) => r.device === peer)?.name, 'till-7', list.stdout)
  })
})
