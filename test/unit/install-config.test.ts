/**
 * install.sh and /etc/llmesh/llmesh.yaml, on a fake package (the script, the units and a
 * MANIFEST.json; no runtime, nothing built): a device directory from `llmesh fleet export` installs
 * its trust root, join secret, invite and llmesh.yaml (and never an operator key), the installed
 * file resolves to /etc/llmesh and its invite; a plain fleet directory gets the commented template
 * (naming `--invite` when given); a re-run never overwrites the file; a leftover LLMESH_NODE_ARGS is
 * reported. The real package is installed by test/lan/package-install.test.ts.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { resolveConfig } from '../../node/config/resolve.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { cli, suiteTmpDir } from '../helpers/index.ts'

const run = promisify(execFile)
const PACKAGING = resolve(import.meta.dirname, '../../packaging')

/** A package tree install.sh accepts: the script, the units, a launcher and a manifest for this machine. */
function fakePackage(dir: string): string {
  const pkg = join(dir, 'llmesh-1.2.3-linux-fake')
  mkdirSync(join(pkg, 'bin'), { recursive: true })
  cpSync(join(PACKAGING, 'systemd'), join(pkg, 'systemd'), { recursive: true })
  cpSync(join(PACKAGING, 'install.sh'), join(pkg, 'install.sh'))
  writeFileSync(join(pkg, 'bin/llmesh'), '#!/bin/sh\n', { mode: 0o755 })
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64'
  writeFileSync(
    join(pkg, 'MANIFEST.json'),
    `${JSON.stringify({ format: 1, name: 'llmesh', version: '1.2.3', arch }, null, 2)}\n`,
  )
  return pkg
}

async function install(pkg: string, args: string[]): Promise<string> {
  const { stdout } = await run('sh', [join(pkg, 'install.sh'), '--no-start', ...args])
  return stdout
}

async function effective(file: string) {
  return (await resolveConfig({ role: 'node', installed: false, flags: { config: file }, env: {}, cwd: '/' })).values
}

describe('install.sh writes /etc/llmesh/llmesh.yaml', () => {
  const dir = suiteTmpDir('llmesh-install-config-')
  const fleet = join(dir, 'fleet')
  let pkg = ''
  before(async () => {
    pkg = fakePackage(dir)
    assert.equal((await cli(['fleet', 'init', fleet, '--fleet-id', 'install-fleet'])).code, 0)
  })

  test('from an exported device directory: its files and settings, never an operator key', async () => {
    const dev = join(dir, 'dev')
    const r = await cli([
      'fleet',
      'export',
      fleet,
      '--device',
      dev,
      '--invite-tags',
      'pilot',
      '--name',
      'till-7',
      '--set',
      'keep_versions=4',
    ])
    assert.equal(r.code, 0, r.stderr)
    const root = join(dir, 'root-a')
    mkdirSync(root)
    await install(pkg, ['--root', root, '--fleet', dev])
    const etc = join(root, 'etc/llmesh')
    assert.equal(readFileSync(join(etc, 'llmesh.yaml'), 'utf8'), readFileSync(join(dev, 'llmesh.yaml'), 'utf8'))
    assert.deepEqual(readFileSync(join(etc, 'invite')), readFileSync(join(dev, 'invite')))
    assert.ok(!existsSync(join(etc, 'operator.key')))
    for (const f of ['llmesh.yaml', 'invite', 'swarm.key']) assert.equal(statSync(join(etc, f)).mode & 0o777, 0o640, f)
    const c = await effective(join(etc, 'llmesh.yaml'))
    assert.deepEqual([c.fleet, c.invite, c.name, c.keep_versions], [etc, join(etc, 'invite'), 'till-7', 4])
    assert.equal((await loadFleet(c.fleet)).root.fleet, 'install-fleet')
    // a re-run (an upgrade, another fleet directory) keeps the file as the operator left it
    writeFileSync(join(etc, 'llmesh.yaml'), 'fleet: .\nname: edited\n')
    await install(pkg, ['--root', root, '--fleet', fleet])
    assert.equal(readFileSync(join(etc, 'llmesh.yaml'), 'utf8'), 'fleet: .\nname: edited\n')
  })

  test('from a plain fleet directory: the template, naming --invite; an old LLMESH_NODE_ARGS is reported', async () => {
    const invite = join(dir, 'a.invite')
    assert.equal((await cli(['device', 'invite', '--fleet', fleet, '--out', invite])).code, 0)
    const root = join(dir, 'root-b')
    mkdirSync(join(root, 'etc/llmesh'), { recursive: true })
    writeFileSync(join(root, 'etc/llmesh/node.env'), 'LLMESH_NODE_ARGS="--tags pilot"\n')
    const out = await install(pkg, ['--root', root, '--fleet', fleet, '--invite', invite])
    assert.match(out, /node\.env sets LLMESH_NODE_ARGS\/LLMESH_SEED_ARGS, which the units no longer read/)
    const etc = join(root, 'etc/llmesh')
    const text = readFileSync(join(etc, 'llmesh.yaml'), 'utf8')
    assert.match(text, /^fleet: \.$/m)
    assert.match(text, /^invite: invite$/m)
    const c = await effective(join(etc, 'llmesh.yaml'))
    assert.deepEqual([c.fleet, c.invite, c.keep_versions], [etc, join(etc, 'invite'), 3])
    // the fresh env templates set nothing, so a clean install reports nothing
    const clean = join(dir, 'root-c')
    mkdirSync(clean)
    const quiet = await install(pkg, ['--root', clean, '--fleet', fleet])
    assert.doesNotMatch(quiet, /no longer read/)
    assert.doesNotMatch(readFileSync(join(clean, 'etc/llmesh/llmesh.yaml'), 'utf8'), /^invite:/m)
    // an invite given on a later run is named in the existing file
    await install(pkg, ['--root', clean, '--invite', invite])
    assert.match(readFileSync(join(clean, 'etc/llmesh/llmesh.yaml'), 'utf8'), /^invite: invite$/m)
  })
})
