/**
 * `llmesh --version` and `llmesh status` start fast: they load commander, the command definitions
 * and the typed API client, never the daemon, zod, libp2p or sigstore (those cost 0.4–2 s of CPU
 * on a Pi). Checked two ways: the modules a run loads (exact, does not depend on the machine's
 * load) and the wall time against a generous bound (0.6 s on an idle machine, scaled, or the
 * time Node takes to run one TypeScript file at the same moment, × 6, whichever is larger).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { CLI_BIN, cli, scaled, tmpDir } from '../helpers/index.ts'
import { writeLoadTrace } from '../helpers/load-trace.ts'
import { freePort } from '../helpers/ports.ts'

const ROOT = join(import.meta.dirname, '../..')

/** Runs the CLI with a resolve hook that lists every module it loads (on stderr, `LOAD <url>`). */
async function loadedModules(hook: string, args: string[]): Promise<string[]> {
  const stderr = await new Promise<string>((ok) => {
    execFile(process.execPath, ['--import', hook, CLI_BIN, ...args], { timeout: scaled(30_000) }, (_e, _o, err) =>
      ok(err),
    )
  })
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('LOAD '))
    .map((l) => l.slice(5))
}

test('--version and status load no daemon, zod, libp2p or sigstore module', async (t) => {
  const dir = await tmpDir(t)
  const hook = await writeLoadTrace(dir)
  const port = await freePort()
  for (const args of [['--version'], ['status', '--api', `127.0.0.1:${port}`]]) {
    const mods = await loadedModules(hook, args)
    assert.ok(
      mods.some((m) => m.endsWith('/cli/program.ts')),
      `the hook saw the CLI load (${args.join(' ')})`,
    )
    const packages = new Set(mods.flatMap((m) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(m)?.[1] ?? []))
    assert.deepEqual([...packages], ['commander'], `${args.join(' ')} loads only commander from node_modules`)
    const heavy = mods.filter((m) => /\/node\/(daemon|mesh|inference|fleet|install)|\/protocols\/|\/seed\//.test(m))
    assert.deepEqual(heavy, [], `${args.join(' ')} loads no daemon or protocol module`)
  }
})

test('--version and status answer within a generous bound', async () => {
  const port = await freePort()
  // the same machine's cost of starting Node on one TypeScript file: the bound follows the load
  const bare = async () => {
    const t0 = performance.now()
    await new Promise((ok) => execFile(process.execPath, [join(ROOT, 'node/constants.ts')], ok))
    return performance.now() - t0
  }
  for (const args of [['--version'], ['status', '--api', `127.0.0.1:${port}`]]) {
    let best = Number.POSITIVE_INFINITY
    let baseline = Number.POSITIVE_INFINITY
    for (let i = 0; i < 3; i++) {
      baseline = Math.min(baseline, await bare())
      const t0 = performance.now()
      const r = await cli(args)
      best = Math.min(best, performance.now() - t0)
      assert.equal(r.code, args[0] === 'status' ? 3 : 0, r.stderr)
    }
    // idle: about 0.3 s against 0.15 s for Node alone; importing the daemon made it 1.3 s (9×)
    // (6×: beside two CPU hogs and two LAN tests one run took 4.2× with nothing more loaded;
    // which modules load is checked exactly above)
    const bound = Math.max(scaled(600), 6 * baseline)
    assert.ok(best < bound, `llmesh ${args[0]} took ${Math.round(best)} ms (bound ${Math.round(bound)} ms)`)
  }
})
