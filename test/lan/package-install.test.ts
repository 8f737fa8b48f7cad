/**
 * The x64 package installs and runs with no network at all: inside a network namespace that has
 * only a loopback interface, its install.sh installs it under a scratch root (`--root`), the
 * installed `llmesh` makes a fleet, a re-run with `--fleet` and a newer version upgrades in place,
 * the installed units pass `systemd-analyze verify` against the installed tree, the installed
 * `llmesh node start` answers `/status` from its installed llmesh.yaml (seen by the packaged readiness check and by
 * `llmesh status`), and `--uninstall` keeps the data unless `--purge`.
 * Needs root and iproute2 (skipped otherwise, except under CI=true), and builds the package once
 * per source state (test/package/build.ts).
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { loadFleet } from '../../node/fleet/index.ts'
import { tmpDir, waitFor } from '../helpers/index.ts'
import { BUILD_TEST_TIMEOUT_MS, ensurePackage } from '../package/build.ts'
import { canRunBed, NETNS_PREFIX, sweepStale } from './netns.ts'

const run = promisify(execFile)
const skip = !canRunBed()
const SYSTEM_UNITS = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) =>
  existsSync(join(d, 'sysinit.target')),
)

/** A namespace with only `lo` (up): nothing in it can reach any other host. */
function loopbackNamespace(t: { after: (fn: () => void) => void }): string {
  sweepStale()
  const ns = `${NETNS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}-pkg`
  execFileSync('ip', ['netns', 'add', ns])
  t.after(() => {
    for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n')) {
      if (Number(pid) > 0) process.kill(Number(pid), 'SIGKILL')
    }
    execFileSync('ip', ['netns', 'delete', ns])
  })
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  return ns
}

test('the x64 package installs, upgrades, runs and uninstalls offline', {
  skip,
  timeout: BUILD_TEST_TIMEOUT_MS,
}, async (t) => {
  const { tarball, manifest } = await ensurePackage('x64')
  const dir = await tmpDir(t, 'llmesh-pkg-install-')
  const ns = loopbackNamespace(t)
  const links = execFileSync('ip', ['-n', ns, '-o', 'link', 'show'], { encoding: 'utf8' }).trim().split('\n')
  assert.deepEqual(
    links.map((l) => l.split(':')[1]?.trim()),
    ['lo'],
    'the namespace has a loopback interface only',
  )
  const inNs = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
    run('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: 300_000, env: { ...process.env, ...env } })

  await inNs('tar', ['-xzf', tarball, '-C', dir])
  const pkg = join(dir, `llmesh-${manifest.version}-linux-x64`)
  const root = join(dir, 'root')
  mkdirSync(join(root, 'etc'), { recursive: true })
  writeFileSync(
    join(root, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\nsystemd-network:x:999:999::/:/usr/sbin/nologin\n',
  )
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nsystemd-network:x:999:\n')

  // 1. a first install without a fleet: the command works, nothing is enabled to run without one
  await inNs(join(pkg, 'install.sh'), ['--root', root])
  const llmesh = join(root, 'usr', 'local', 'bin', 'llmesh')
  const version = await inNs(llmesh, ['--version'])
  assert.equal(version.stdout.trim(), manifest.version)
  assert.match(
    readFileSync(join(root, 'etc', 'passwd'), 'utf8'),
    /^llmesh:x:998:998:llmesh daemon:\/var\/lib\/llmesh:/m,
  )

  // 2. the installed llmesh makes the fleet; the operator installs a newer package with --fleet
  const fleet = join(dir, 'fleet')
  await inNs(llmesh, ['fleet', 'init', fleet])
  const next = `${manifest.version}-next`
  const manifestFile = join(pkg, 'MANIFEST.json')
  writeFileSync(
    manifestFile,
    readFileSync(manifestFile, 'utf8').replace(`"version": "${manifest.version}"`, `"version": "${next}"`),
  )
  await inNs(join(pkg, 'install.sh'), ['--root', root, '--fleet', fleet])
  const opt = join(root, 'opt', 'llmesh')
  assert.equal(readlinkSync(join(opt, 'current')), next)
  assert.equal(readlinkSync(join(opt, 'previous')), manifest.version)
  assert.equal(realpathSync(llmesh), join(realpathSync(opt), next, 'bin', 'llmesh'))
  const etc = join(root, 'etc', 'llmesh')
  assert.equal(statSync(join(etc, 'swarm.key')).mode & 0o777, 0o640)
  assert.ok(existsSync(join(etc, 'trust-root.json')))
  assert.ok(!existsSync(join(etc, 'operator.key')), 'a device never gets the operator key')
  assert.ok(existsSync(join(etc, 'node.env')))
  assert.match(readFileSync(join(etc, 'llmesh.yaml'), 'utf8'), /^fleet: \.$/m, 'the settings file the units read')
  assert.equal(
    readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/llmesh-node.service')),
    '/etc/systemd/system/llmesh-node.service',
  )

  // 3. the installed units name binaries that exist in the installed tree
  if (SYSTEM_UNITS !== undefined) {
    cpSync(SYSTEM_UNITS, join(root, 'usr/lib/systemd/system'), { recursive: true })
    for (const unit of ['llmesh-node.service', 'llmesh-seed.service']) {
      const { stderr } = await run('systemd-analyze', ['verify', `--root=${root}`, unit])
      assert.equal(stderr.trim(), '', `${unit}: ${stderr}`)
    }
  }

  // 4. the installed daemon runs and answers on loopback
  const data = join(root, 'var', 'lib', 'llmesh')
  const api = '127.0.0.1:7420'
  const child = spawn(
    'ip',
    // as the unit starts it: the installed llmesh.yaml (its `fleet: .` is this etc), the unit's --data
    [
      'netns',
      'exec',
      ns,
      llmesh,
      'node',
      'start',
      '--config',
      join(etc, 'llmesh.yaml'),
      '--data',
      data,
      '--no-mdns',
      '--api',
      api,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  t.after(() => child.kill('SIGKILL'))
  const current = join(opt, 'current')
  await inNs(join(current, 'runtime/bin/node'), [join(current, 'libexec/wait-ready.js'), data, '120'], {
    MAINPID: String(child.pid),
  }).catch((err) => assert.fail(`not ready: ${err}\n${stderr}`))
  const status = JSON.parse((await inNs(llmesh, ['status', '--api', `http://${api}`, '--json'])).stdout) as {
    device: { role: string; fleet: string }
  }
  assert.equal(status.device.role, 'node')
  assert.equal(status.device.fleet, (await loadFleet(fleet)).root.fleet)
  // a stale node.json of another pid is not taken for readiness
  await assert.rejects(
    inNs(join(current, 'runtime/bin/node'), [join(current, 'libexec/wait-ready.js'), data, '1'], { MAINPID: '1' }),
  )
  child.kill('SIGTERM')
  await waitFor(() => child.exitCode !== null || child.signalCode !== null, { timeoutMs: 30_000, what: 'node exit' })
  assert.equal(await exited, 0, stderr)

  // 5. the seed: re-run from the installed copy (no copy of itself), with the operator key
  await inNs(join(current, 'install.sh'), ['--root', root, '--fleet', fleet, '--seed'])
  assert.equal(statSync(join(etc, 'operator.key')).mode & 0o777, 0o640)
  assert.ok(existsSync(join(root, 'var/lib/llmesh-seed')))
  const wants = join(root, 'etc/systemd/system/multi-user.target.wants')
  assert.equal(readlinkSync(join(wants, 'llmesh-seed.service')), '/etc/systemd/system/llmesh-seed.service')
  assert.throws(() => lstatSync(join(wants, 'llmesh-node.service')), 'one role per machine')
  assert.equal(readlinkSync(join(opt, 'current')), next)
  await assert.rejects(inNs(join(current, 'install.sh'), ['--root', root, '--seed', '--fleet', data]), /not a fleet/)

  // 6. uninstall keeps the data and the user; --purge removes them
  await inNs(join(current, 'install.sh'), ['--root', root, '--uninstall'])
  assert.ok(!existsSync(opt) && !existsSync(etc))
  assert.throws(() => lstatSync(llmesh))
  assert.ok(!existsSync(join(root, 'etc/systemd/system/llmesh-node.service')))
  assert.ok(existsSync(data), 'the data stays')
  await inNs(join(pkg, 'install.sh'), ['--root', root, '--uninstall', '--purge'])
  assert.ok(!existsSync(data))
  assert.doesNotMatch(readFileSync(join(root, 'etc', 'passwd'), 'utf8'), /^llmesh:/m)
})
