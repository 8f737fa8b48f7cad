/**
 * `llmesh rollout status|pause|promote|abort` against real daemons: through the seed (which holds
 * the operator key), and signed locally with `--fleet <dir>` and sent to a device's API
 * (`POST /messages`); a node without the key refuses to sign. On the same bed, every command with
 * `--json` runs once (in this process: no Node start per command) and its document must be an
 * object envelope with snake_case keys at every depth, data maps' keys aside (cli/json-output.ts).
 */

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { isDataMap } from '../../cli/json-output.ts'
import { buildProgram } from '../../cli/program.ts'
import { loadFleet } from '../../node/fleet/index.ts'
import { cli, POLICIES, scaled, suiteTmpDir } from '../helpers/index.ts'
import { publish, type RolloutFleet, rolloutOf, startRolloutFleet, waitFor } from './rollout-helpers.ts'

describe('llmesh rollout CLI', { timeout: scaled(100_000) }, () => {
  let f: RolloutFleet
  let fleetDir: string
  const home = suiteTmpDir('llmesh-rollout-cli-')
  before(async () => {
    fleetDir = join(home, 'fleet')
    const init = await cli(['fleet', 'init', fleetDir, '--fleet-id', 'cli-fleet', '--auto-enroll'])
    assert.equal(init.code, 0, init.stderr)
    const fl = await loadFleet(fleetDir)
    f = await startRolloutFleet([['pilot'], []], {
      id: fl.root.fleet,
      psk: fl.swarmKey,
      signer: fl.operatorSigner!,
      trust: fl.root,
    })
    await publish(f, '1.0.0', POLICIES.PILOT_THEN_ALL('10m'))
  })
  after(async () => {
    await f?.stop()
  })

  test('status names each release state; pause through the seed; promote signed locally via a device', async () => {
    const seedApi = String(f.seed.apiUrl)
    const deviceApi = String(f.devices[1].daemon.apiUrl)
    await waitFor(() => rolloutOf(f.seedParts, '1.0.0') !== undefined, 20_000, 'seed knows v1')
    const st = await cli(['rollout', 'status', '--api', seedApi, '--json'])
    assert.equal(st.code, 0, st.stderr)
    const json = JSON.parse(st.stdout) as { releases: Array<{ model: string; version: string; state: string }> }
    assert.deepEqual(
      json.releases.map((r) => `${r.model}@${r.version} ${r.state}`),
      ['tiny@1.0.0 pilot'],
    )

    const pause = await cli(['rollout', 'pause', 'tiny@1.0.0', '--api', seedApi, '--reason', 'look first', '--json'])
    assert.equal(pause.code, 0, pause.stderr)
    assert.equal((JSON.parse(pause.stdout) as { via: string }).via, 'node')
    await waitFor(() => f.devices.every((d) => rolloutOf(d.parts, '1.0.0')?.state === 'paused'), 20_000, 'paused')

    // a device holds no operator key: it refuses to sign
    const refused = await cli(['rollout', 'abort', 'tiny@1.0.0', '--api', deviceApi])
    assert.equal(refused.code, 4, 'refused by the daemon')
    assert.match(refused.stderr, /ERR_NO_OPERATOR_KEY/)

    // with the fleet directory, the CLI signs and any node publishes the signed bytes
    const promote = await cli([
      'rollout',
      'promote',
      'tiny@1.0.0',
      '--to-stage',
      'full',
      '--fleet',
      fleetDir,
      '--api',
      deviceApi,
      '--json',
    ])
    assert.equal(promote.code, 0, promote.stderr)
    assert.equal((JSON.parse(promote.stdout) as { via: string }).via, 'local-key')
    await waitFor(
      () => [f.seedParts, ...f.devices.map((d) => d.parts)].every((p) => rolloutOf(p, '1.0.0')?.state === 'promoted'),
      20_000,
      'promoted everywhere',
    )
    const human = await cli(['rollout', 'status', 'tiny@1.0.0', '--api', seedApi])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /tiny@1\.0\.0 {2}promoted/)
    assert.match(human.stdout, /command pause/)
    assert.match(human.stdout, /command promote → full/)
    assert.match(human.stdout, /cohort pilot: /)
    const bad = await cli(['rollout', 'pause', 'tiny', '--api', seedApi])
    assert.equal(bad.code, 2, 'a usage error')
    assert.match(bad.stderr, /model>@<version/)
  })

  test('a command for a release no node knows is refused, signed nowhere, with a non-zero exit', async () => {
    const seedApi = String(f.seed.apiUrl)
    const deviceApi = String(f.devices[1].daemon.apiUrl)
    const before = f.seedParts.controller!.statusJson().releases.flatMap((r) => r.commands).length
    const res = await fetch(`${seedApi}/rollout/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'pause', model: 'nope', version: '1.0.0' }),
    })
    assert.equal(res.status, 404)
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_UNKNOWN_RELEASE')
    const viaSeed = await cli(['rollout', 'pause', 'nope@1.0.0', '--api', seedApi, '--json'])
    assert.equal(viaSeed.code, 4, 'refused by the daemon')
    assert.match(viaSeed.stderr, /ERR_UNKNOWN_RELEASE/)
    // under --json, stdout is the daemon's error body plus the class
    assert.deepEqual(JSON.parse(viaSeed.stdout), {
      error: {
        code: 'ERR_UNKNOWN_RELEASE',
        message: 'nope@1.0.0 is not a release this node knows (see llmesh rollout status)',
        class: 'refused',
      },
    })
    // signed locally: refused before anything is signed or sent
    const viaDevice = await cli(['rollout', 'abort', 'tiny@9.9.9', '--fleet', fleetDir, '--api', deviceApi])
    assert.equal(viaDevice.code, 4)
    assert.match(viaDevice.stderr, /ERR_UNKNOWN_RELEASE/)
    const status = await cli(['rollout', 'status', 'nope@1.0.0', '--api', seedApi])
    assert.equal(status.code, 4)
    assert.match(status.stderr, /ERR_UNKNOWN_RELEASE/)
    assert.equal(f.seedParts.controller!.statusJson().releases.flatMap((r) => r.commands).length, before)
    assert.equal(f.seedParts.controller!.statusJson().releases.length, 1)
  })

  test('every --json command prints one object envelope with snake_case keys at every depth', async () => {
    const S = String(f.seed.apiUrl)
    const D = String(f.devices[1].daemon.apiUrl)
    const dir = join(home, 'walk')
    await mkdir(dir)
    const peer = async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const [p1, p2] = [await peer(), await peer()]
    const pkgs = join(dir, 'pkgs')
    await mkdir(pkgs)
    const tarball = 'llmesh-0.0.1-linux-x64.tar.gz'
    await writeFile(join(pkgs, tarball), 'not really a tarball')
    const sum = createHash('sha256').update('not really a tarball').digest('hex')
    await writeFile(join(pkgs, 'SHA256SUMS'), `${sum}  ${tarball}\n`)
    /** [args, whether it must succeed]: each command of the program with --json, in an order that works. */
    const runs: Array<[string[], boolean]> = [
      [['fleet', 'init', join(dir, 'f2'), '--fleet-id', 'walk-fleet'], true],
      [['fleet', 'show', fleetDir], true],
      [['fleet', 'rotate-key', join(dir, 'f2')], true],
      [['fleet', 'export', join(dir, 'f2'), '--device', join(dir, 'dev'), '--no-invite'], true],
      [['model', 'make-tiny', join(dir, 'tiny.gguf')], true],
      [['model', 'inspect', join(dir, 'tiny.gguf')], true],
      [['config', 'print', '--role', 'node', '--data', join(dir, 'cfg')], true],
      [['status', '--api', S], true],
      [['status', '--api', D], true],
      [['release', 'publish', join(dir, 'tiny.gguf'), '--model', 'tiny', '--version', '1.1.0', '--api', S], true],
      [['release', 'list', '--api', S], true],
      [['release', 'show', 'tiny@1.1.0', '--api', S], true],
      [
        [
          'release',
          'get',
          'tiny@1.1.0',
          '--bundle',
          join(dir, 'b.json'),
          '--manifest',
          join(dir, 'm.json'),
          '--api',
          S,
        ],
        true,
      ],
      [['verify', join(dir, 'tiny.gguf'), '--bundle', join(dir, 'b.json'), '--fleet', fleetDir], true],
      [['package', 'sign', pkgs, '--fleet', fleetDir], true],
      [['release', 'export', 'tiny@1.1.0', '--out', join(dir, 'exp'), '--api', S], true],
      [['release', 'import', join(dir, 'exp'), '--api', D], true],
      [['release', 'agents', '--api', S], true],
      // not a real package: refused, and the error body is checked like any document
      [['release', 'publish-agent', join(pkgs, tarball), '--version', '0.0.1', '--arch', 'x64', '--api', S], false],
      [['rollout', 'status', '--api', S], true],
      [['rollout', 'status', 'tiny@1.0.0', '--api', S], true],
      [['rollout', 'pause', 'tiny@1.1.0', '--api', S], true],
      [['rollout', 'resume', 'tiny@1.1.0', '--api', S], true],
      [['rollout', 'promote', 'tiny@1.1.0', '--api', S], true],
      [['device', 'list', '--api', S], true],
      [
        [
          'device',
          'enroll',
          p1,
          '--tags',
          'walk',
          '--fleet',
          fleetDir,
          '--arch',
          'x64',
          '--ram-mb',
          '1024',
          '--api',
          S,
        ],
        true,
      ],
      [['device', 'tag', p1, '--tags', 'walk,site:a', '--api', S], true],
      [['device', 'revoke', p1, '--reason', 'walked', '--api', S], true],
      [['device', 'invite', '--out', join(dir, 'invite'), '--tags', 'walk', '--api', S], true],
      // p2 never asked to join: refused
      [['device', 'approve', p2, '--api', S], false],
      [['fleet', 'report', '--out', join(dir, 'report'), '--api', S], true],
      [['fleet', 'report', 'import', join(dir, 'report'), '--api', D], true],
      [['fleet', 'rotate-swarm-key', fleetDir, '--switch-in', '1h', '--api', S], true],
      [['rollout', 'abort', 'tiny@1.1.0', '--reason', 'walked', '--api', S], true],
    ]
    const walked = new Set(runs.map(([a]) => commandOf(a)))
    assert.deepEqual(
      [...jsonCommands()].filter((c) => !walked.has(c)),
      [],
      'commands with --json the walk misses',
    )
    const bad: string[] = []
    for (const [args, ok] of runs) {
      const r = await runInProcess([...args, '--json'])
      const what = `llmesh ${args.join(' ')} (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`
      assert.equal(r.code === 0, ok, what)
      let doc: unknown
      assert.doesNotThrow(
        () => {
          doc = JSON.parse(r.stdout)
        },
        `${what}: stdout is one JSON document: ${r.stdout.slice(0, 200)}`,
      )
      assert.ok(doc !== null && typeof doc === 'object' && !Array.isArray(doc), `${what}: an object envelope`)
      if (!ok) assert.deepEqual(Object.keys(doc as object), ['error'], what)
      for (const k of notSnake(doc)) bad.push(`${commandOf(args)}: ${k}`)
    }
    assert.deepEqual(bad, [], 'keys that are not snake_case (outside a data map)')
  })
})

/** The command path of a CLI run (`rollout status`), its words before the first argument or flag. */
function commandOf(args: string[]): string {
  const program = buildProgram()
  const words: string[] = []
  let cmd = program
  for (const w of args) {
    const sub = cmd.commands.find((c) => c.name() === w)
    if (sub === undefined) break
    words.push(w)
    cmd = sub
  }
  return words.join(' ')
}

/** Every command of the program that takes --json. */
function jsonCommands(): Set<string> {
  const out = new Set<string>()
  const walk = (c: ReturnType<typeof buildProgram>, path: string[]) => {
    for (const s of c.commands) {
      const p = [...path, s.name()]
      if (s.options.some((o) => o.long === '--json')) out.add(p.join(' '))
      walk(s, p)
    }
  }
  walk(buildProgram(), [])
  return out
}

/**
 * The paths of keys that are not snake_case, at every depth. The keys of a data map (its field
 * name, or parent.field, in DATA_MAPS: peer ids, model and stage names, codes) are data and
 * exempt; their values are not.
 */
function notSnake(v: unknown, path = '$', at?: string, parent?: string): string[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => notSnake(x, `${path}[${i}]`))
  if (v === null || typeof v !== 'object') return []
  const data = at !== undefined && isDataMap(at, parent)
  return Object.entries(v).flatMap(([k, x]) => [
    ...(data || /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/.test(k) ? [] : [`${path}.${k}`]),
    ...(data ? notSnake(x, `${path}.${k}`, undefined, at) : notSnake(x, `${path}.${k}`, k, at)),
  ])
}

/**
 * Runs `llmesh <args>` in this process (stdout and stderr captured, the exit code read from
 * process.exitCode): the same code path as the binary (cli/bin.ts), without a Node start per command.
 */
async function runInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const out = process.stdout.write
  const err = process.stderr.write
  const saved = process.exitCode
  process.exitCode = undefined
  process.stdout.write = ((c: string | Uint8Array) => {
    stdout += String(c)
    return true
  }) as typeof process.stdout.write
  process.stderr.write = ((c: string | Uint8Array) => {
    stderr += String(c)
    return true
  }) as typeof process.stderr.write
  let code: number
  try {
    await buildProgram().parseAsync(['node', 'llmesh', ...args])
    code = Number(process.exitCode ?? 0)
  } catch (e) {
    stderr += String(e)
    code = 2
  } finally {
    process.stdout.write = out
    process.stderr.write = err
    process.exitCode = saved
  }
  return { code, stdout, stderr }
}
