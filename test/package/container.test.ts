/**
 * The OCI image (packaging/container/): build-image.sh makes the amd64 image from the x64 package
 * on a Debian base made from Debian packages (mmdebstrap | podman import, nothing from an image
 * registry), then the image's `llmesh --version` is the package's, and its entrypoint
 * (`llmesh node start` reading /etc/llmesh/llmesh.yaml) runs a node from a device directory of
 * `llmesh fleet export --device`, mounted read-only, with `--network none` and `--no-mdns`, that
 * `llmesh status` in the container sees in the fleet; `podman stop` ends it cleanly. The image's
 * OCI archive (--save) is signed with the operator key like the packages, `llmesh verify` accepts
 * it, and the image `podman load`ed from it runs.
 * The arm64 image (from the arm64 package, its base and the Containerfile's RUN executed under
 * qemu through binfmt_misc) runs `llmesh --version` and `uname -m` says aarch64.
 *
 * Opt-in: LLMESH_TEST_CONTAINER=1 (or amd64) the amd64 image, =arm64 the arm64 one, =all both.
 * Making a Debian base takes ~5 minutes (amd64) or ~15 (arm64, emulated) on the first run (it is
 * kept in podman's storage and reused), the image build about one more. Needs root, podman,
 * mmdebstrap; runc is used when present (Debian bookworm's crun refuses hybrid cgroup v1/v2
 * machines), and the container's rlimits are set below the host's (a machine without
 * CAP_SYS_RESOURCE cannot raise them to podman's defaults).
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { chownSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { loadFleet } from '../../node/fleet/index.ts'
import { cli, scaled, tmpDir, waitFor } from '../helpers/index.ts'
import { BUILD_TEST_TIMEOUT_MS, DIST, ensurePackage, REPO_ROOT } from './build.ts'

const run = promisify(execFile)
const TAG = 'localhost/llmesh-test'

function present(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const wanted = process.env.LLMESH_TEST_CONTAINER ?? ''
const needs =
  process.getuid?.() !== 0 || !present('podman') || !present('mmdebstrap') ? 'needs root, podman and mmdebstrap' : false
const skip = !['1', 'amd64', 'all'].includes(wanted)
  ? 'opt-in: LLMESH_TEST_CONTAINER=1 (a first run makes a Debian base, ~5 minutes)'
  : needs
const skipArm64 = !['arm64', 'all'].includes(wanted)
  ? 'opt-in: LLMESH_TEST_CONTAINER=arm64 or all (a first run makes an arm64 Debian base under qemu, ~15 minutes)'
  : needs ||
    (process.arch === 'arm64' || existsSync('/proc/sys/fs/binfmt_misc/qemu-aarch64')
      ? false
      : 'needs qemu-aarch64 in binfmt_misc (qemu-user-static, binfmt-support)')

/** `podman run` options this machine needs (see the header). */
const RUN_OPTS = [
  ...(present('runc') ? ['--runtime', 'runc'] : []),
  '--ulimit',
  'nofile=4096:4096',
  '--ulimit',
  'nproc=4096:4096',
]

test('the amd64 image runs llmesh --version and llmesh node start from a device directory', {
  skip,
  timeout: BUILD_TEST_TIMEOUT_MS,
}, async (t) => {
  const { manifest } = await ensurePackage('x64')
  const tag = `${TAG}:${manifest.version}`
  const image = `${tag}-amd64`
  const dir = await tmpDir(t, 'llmesh-container-')
  const saved = join(dir, 'image')
  const t0 = performance.now()
  const built = await run(
    join(REPO_ROOT, 'packaging/container/build-image.sh'),
    ['--arch', 'amd64', '--dist', DIST, '--tag', tag, '--save', saved],
    { timeout: scaled(15 * 60_000) },
  )
  process.stderr.write(`${built.stdout.trim()}\n`)
  process.stderr.write(`build-image.sh: ${((performance.now() - t0) / 1000).toFixed(0)} s\n`)
  t.after(() => run('podman', ['rmi', '--force', image]).catch(() => {}))
  const inspect = JSON.parse((await run('podman', ['manifest', 'inspect', tag])).stdout) as {
    manifests: Array<{ platform: { architecture: string } }>
  }
  assert.ok(inspect.manifests.some((m) => m.platform.architecture === 'amd64'))
  t.after(() => run('podman', ['manifest', 'rm', tag]).catch(() => {}))

  const podmanRun = (args: string[]) =>
    run('podman', ['run', '--rm', ...RUN_OPTS, '--network', 'none', ...args], { timeout: scaled(120_000) })
  const version = await podmanRun(['--entrypoint', '/usr/local/bin/llmesh', image, '--version'])
  assert.equal(version.stdout.trim(), manifest.version)
  const ids = (await podmanRun(['--entrypoint', '/usr/bin/id', image])).stdout
  const uid = Number(/uid=(\d+)\(llmesh\)/.exec(ids)?.[1])
  const gid = Number(/gid=(\d+)\(llmesh\)/.exec(ids)?.[1])
  assert.ok(uid > 0 && gid > 0, `the image runs as the user llmesh, not root: ${ids}`)

  // a device directory as the operator hands it over, readable by the image's llmesh user only
  const fleet = join(dir, 'fleet')
  const device = join(dir, 'device')
  assert.equal((await cli(['fleet', 'init', fleet])).code, 0)
  const exported = await cli(['fleet', 'export', fleet, '--device', device, '--no-invite'])
  assert.equal(exported.code, 0, exported.stderr)

  // the image's OCI archive: signed by the operator key like the packages, checked with the trust root
  const archive = join(saved, `llmesh-${manifest.version}-oci.tar`)
  const signed = await cli(['package', 'sign', saved, '--fleet', fleet])
  assert.equal(signed.code, 0, signed.stderr)
  const verified = await cli(['verify', archive, '--trust-root', join(device, 'trust-root.json')])
  assert.equal(verified.code, 0, verified.stderr)
  assert.match(verified.stdout, /^OK package llmesh-.*-oci\.tar of fleet /)
  for (const f of ['', ...readdirSync(device)]) chownSync(join(device, f), uid, gid)

  const name = `llmesh-test-${process.pid}`
  await run('podman', [
    'run',
    '--detach',
    '--name',
    name,
    ...RUN_OPTS,
    '--network',
    'none',
    '--volume',
    `${device}:/etc/llmesh:ro`,
    image,
    '--no-mdns',
  ])
  t.after(() => run('podman', ['rm', '--force', '--volumes', name]).catch(() => {}))
  const fleetId = (await loadFleet(fleet)).root.fleet
  let last = ''
  const t1 = performance.now()
  await waitFor(
    async () => {
      const r = await run('podman', ['exec', name, '/usr/local/bin/llmesh', 'status', '--json']).catch(
        (e: { stderr?: string }) => ({ stdout: '', stderr: String(e.stderr) }),
      )
      last = r.stdout || r.stderr
      if (r.stdout === '') return false
      const status = JSON.parse(r.stdout) as { device: { role: string; fleet: string } }
      return status.device.role === 'node' && status.device.fleet === fleetId
    },
    { timeoutMs: 120_000, intervalMs: 1000, what: 'the node in the container answers /status', detail: () => last },
  )
  process.stderr.write(`node start to /status: ${((performance.now() - t1) / 1000).toFixed(1)} s\n`)
  await run('podman', ['stop', '--time', '30', name], { timeout: scaled(60_000) })
  const exit = (await run('podman', ['inspect', '--format', '{{.State.ExitCode}}', name])).stdout.trim()
  assert.equal(exit, '0', (await run('podman', ['logs', name])).stderr)

  // the verified archive is the image: gone from storage, loaded from it, it runs
  await run('podman', ['rm', '--force', name])
  await run('podman', ['manifest', 'rm', tag]).catch(() => {})
  await run('podman', ['rmi', '--force', image])
  const loaded = await run('podman', ['load', '--input', archive], { timeout: scaled(300_000) })
  const ref = /Loaded image(?:\(s\))?: (\S+)/.exec(loaded.stdout)?.[1]
  assert.ok(ref, loaded.stdout)
  t.after(() => run('podman', ['rmi', '--force', ref]).catch(() => {}))
  const again = await podmanRun(['--entrypoint', '/usr/local/bin/llmesh', ref, '--version'])
  assert.equal(again.stdout.trim(), manifest.version)
})

test('the arm64 image runs llmesh --version on aarch64 (under qemu on x64)', {
  skip: skipArm64,
  timeout: BUILD_TEST_TIMEOUT_MS,
}, async (t) => {
  const { manifest } = await ensurePackage('arm64')
  const tag = `${TAG}:${manifest.version}`
  const image = `${tag}-arm64`
  const t0 = performance.now()
  const built = await run(
    join(REPO_ROOT, 'packaging/container/build-image.sh'),
    ['--arch', 'arm64', '--dist', DIST, '--tag', tag],
    { timeout: scaled(30 * 60_000) },
  )
  process.stderr.write(`${built.stdout.trim()}\n`)
  process.stderr.write(`build-image.sh --arch arm64: ${((performance.now() - t0) / 1000).toFixed(0)} s\n`)
  t.after(() => run('podman', ['rmi', '--force', image]).catch(() => {}))
  t.after(() => run('podman', ['manifest', 'rm', tag]).catch(() => {}))
  const arch = (await run('podman', ['image', 'inspect', '--format', '{{.Architecture}}', image])).stdout.trim()
  assert.equal(arch, 'arm64')
  const podmanRun = (args: string[]) =>
    run('podman', ['run', '--rm', '--arch', 'arm64', ...RUN_OPTS, '--network', 'none', ...args], {
      timeout: scaled(300_000),
    })
  const machine = await podmanRun(['--entrypoint', '/usr/bin/uname', image, '-m'])
  assert.equal(machine.stdout.trim(), 'aarch64')
  const t1 = performance.now()
  const version = await podmanRun(['--entrypoint', '/usr/local/bin/llmesh', image, '--version'])
  assert.equal(version.stdout.trim(), manifest.version)
  process.stderr.write(`llmesh --version in the arm64 image: ${((performance.now() - t1) / 1000).toFixed(1)} s\n`)
})
