/**
 * An API open to the network without a token refuses to start (node/api/exposure.ts), before
 * anything listens: the check itself, the ApiServer, the Daemon, and the real CLI
 * (`llmesh node|seed start --api 0.0.0.0:0` / a TEST-NET address). Nothing here listens beyond
 * loopback: the refusals come first, and the one daemon that starts binds 127.0.0.1.
 */

import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { checkApiExposure, isLoopbackHost } from '../../node/api/exposure.ts'
import { ApiServer } from '../../node/api/server.ts'
import { NODE_INFO_FILE } from '../../node/constants.ts'
import { Daemon } from '../../node/daemon.ts'
import { silentLogger } from '../../node/logger.ts'
import { scaled, tmpDir } from '../helpers/index.ts'
import { makeFleet } from '../mesh/fixtures.ts'

const execFileP = promisify(execFile)
const BIN = join(import.meta.dirname, '../../cli/bin.ts')
const TOKEN = 'a-token-of-at-least-16-chars'

test('which bind addresses count as loopback', () => {
  for (const h of ['127.0.0.1', '127.0.0.2', '127.255.0.9', '::1', '[::1]', 'localhost', 'LOCALHOST'])
    assert.equal(isLoopbackHost(h), true, h)
  for (const h of [
    '0.0.0.0',
    '::',
    '10.0.0.5',
    '192.0.2.1',
    'fe80::1',
    '::ffff:10.0.0.1',
    'my-pi',
    'localhost.example',
  ])
    assert.equal(isLoopbackHost(h), false, h)
})

test('checkApiExposure: loopback or a token is fine; beyond loopback without one needs --api-insecure', () => {
  assert.equal(checkApiExposure({ address: '127.0.0.1:7420' }), 'loopback')
  assert.equal(checkApiExposure({ address: ':7420' }), 'loopback', 'an empty host is 127.0.0.1')
  assert.equal(checkApiExposure({ address: '[::1]:0' }), 'loopback')
  assert.equal(checkApiExposure({ address: '10.0.0.5:7420', token: TOKEN }), 'token')
  assert.equal(checkApiExposure({ address: '0.0.0.0:7420', insecure: true }), 'insecure')
  for (const address of ['0.0.0.0:0', '[::]:7420', '10.0.0.5:7420', 'my-pi:7420']) {
    assert.throws(
      () => checkApiExposure({ address }),
      (err: Error & { code?: string }) =>
        err.name === 'ApiUnprotectedError' &&
        err.code === 'ERR_API_UNPROTECTED' &&
        err.message.includes(address) &&
        /--api-token-file/.test(err.message) &&
        /--api-insecure/.test(err.message),
      address,
    )
    assert.throws(() => checkApiExposure({ address, token: '' }), { code: 'ERR_API_UNPROTECTED' }, 'an empty token')
  }
  assert.throws(() => checkApiExposure({ address: 'nonsense' }), { code: 'ERR_INVALID_INPUT' })
})

test('ApiServer refuses 0.0.0.0 without a token before listening', async () => {
  const server = new ApiServer({ logger: silentLogger() }, { address: '0.0.0.0:0', plugins: [] })
  await assert.rejects(server.start(), { code: 'ERR_API_UNPROTECTED' })
  assert.equal(server.url, undefined)
  assert.deepEqual(server.routes, [])
})

test('a Daemon refuses before it creates an identity or starts the mesh', async (t) => {
  const dir = await tmpDir(t, 'llmesh-exposure-')
  const fleet = makeFleet()
  const daemon = new Daemon({
    fleet: { id: fleet.id, psk: fleet.psk, trust: fleet.trust },
    dataDir: dir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    api: '0.0.0.0:0',
    mdns: false,
    logger: silentLogger(),
  })
  await assert.rejects(daemon.start(), { code: 'ERR_API_UNPROTECTED' })
  assert.equal(existsSync(join(dir, 'identity.key')), false)
  assert.equal(daemon.apiUrl, undefined)
})

// each case is its own process (the CLI takes seconds to load on a busy machine): run them side by side
describe('the CLI', { timeout: scaled(180_000), concurrency: true }, () => {
  let home: string
  let fleetDir: string
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'llmesh-exposure-cli-'))
    fleetDir = join(home, 'fleet')
    await execFileP(process.execPath, [BIN, 'fleet', 'init', fleetDir, '--fleet-id', 'exposure'])
  })
  after(async () => {
    await rm(home, { recursive: true, force: true })
  })

  const start = async (role: 'node' | 'seed', api: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) => {
    const data = join(home, `${role}-${api.replace(/[^0-9a-z]/gi, '_')}-${extra.length}`)
    const args = [BIN, role, 'start', '--fleet', fleetDir, '--data', data, '--no-mdns']
    args.push('--listen', '/ip4/127.0.0.1/tcp/0', '--api', api, ...extra)
    try {
      await execFileP(process.execPath, args, {
        timeout: scaled(60_000),
        env: { ...process.env, LLMESH_API_TOKEN: '', ...env },
      })
      return { code: 0, stderr: '', data }
    } catch (err) {
      const e = err as { code: number; stderr: string; killed?: boolean }
      assert.notEqual(e.killed, true, 'the daemon started instead of refusing')
      return { code: e.code, stderr: e.stderr, data }
    }
  }

  for (const [role, api] of [
    ['node', '0.0.0.0:0'],
    ['seed', '0.0.0.0:0'],
    ['node', '192.0.2.1:7420'],
  ] as const) {
    test(`llmesh ${role} start --api ${api} without a token refuses to start`, async () => {
      const r = await start(role, api)
      assert.notEqual(r.code, 0)
      const lines = r.stderr.trim().split('\n')
      assert.match(
        lines.at(-1) ?? '',
        /^llmesh: error: the API address .* no API token is set.*\[ERR_API_UNPROTECTED\]$/,
      )
      assert.ok(r.stderr.includes(api))
      assert.equal(existsSync(join(r.data, 'identity.key')), false, 'nothing started')
    })
  }

  test('--api-token-file makes the address acceptable: the refusal is about the token only', async () => {
    // 192.0.2.1 is TEST-NET-1, on no interface: past the check, the bind itself fails (EADDRNOTAVAIL)
    const tokenFile = join(home, 'token')
    await writeFile(tokenFile, TOKEN)
    const r = await start('seed', '192.0.2.1:7420', ['--api-token-file', tokenFile])
    assert.notEqual(r.code, 0)
    assert.doesNotMatch(r.stderr, /ERR_API_UNPROTECTED/)
    assert.match(r.stderr, /EADDRNOTAVAIL|address not available/i)
  })

  test('--api-insecure accepts it with a loud warning', async () => {
    // the warning path without serving on real interfaces: 192.0.2.1 is on no interface, so the
    // daemon passes the check, warns, and then fails to bind
    const r = await start('seed', '192.0.2.1:7420', ['--api-insecure'], { LLMESH_LOG_LEVEL: 'info' })
    assert.notEqual(r.code, 0)
    assert.doesNotMatch(r.stderr, /ERR_API_UNPROTECTED/)
    const warn = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; api?: string })
      .find((l) => /^API INSECURE/.test(l.msg))
    assert.ok(warn, r.stderr)
    assert.equal(warn.level, 40)
    assert.equal(warn.api, '192.0.2.1:7420')
  })

  test('a loopback address needs no token: the seed starts and serves', async () => {
    const data = join(home, 'loopback-seed')
    const args = [BIN, 'seed', 'start', '--fleet', fleetDir, '--data', data, '--no-mdns']
    args.push('--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.2:0')
    const child = spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, LLMESH_API_TOKEN: '' } })
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)))
    try {
      const deadline = Date.now() + 60_000
      let info: { api: string } | undefined
      while (info === undefined && Date.now() < deadline && child.exitCode === null) {
        info = await readFile(join(data, NODE_INFO_FILE), 'utf8').then(
          (t) => JSON.parse(t) as { api: string },
          () => undefined,
        )
        if (info === undefined) await new Promise((r) => setTimeout(r, 200))
      }
      assert.ok(info, 'the seed started')
      assert.match(info.api, /^http:\/\/127\.0\.0\.2:\d+$/)
      assert.equal((await fetch(`${info.api}/status`)).status, 200)
    } finally {
      child.kill('SIGTERM')
      await exited
    }
  })
})
