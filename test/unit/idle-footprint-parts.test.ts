/**
 * Parts of the idle footprint (issue 17 goal 5, docs/benchmarks.md): the package's JavaScript
 * (packaging/compile.ts: types erased, `./x.ts` imports rewritten to `./x.js`, declaration files
 * not shipped), the launcher's settings for every long-lived process (packaging/llmesh, run on a
 * stub runtime that prints what it was given), the bundle's rewriting of each module's `import.meta`
 * (packaging/bundle.ts) and node/http-undici-fix.ts (the daemon's module
 * graph, whose @libp2p/websockets imports `node:http` from an ES module, loads no undici; without
 * the fix it does).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { rewriteImportMeta, rewritePackageJsonImport } from '../../packaging/bundle.ts'
import { shippedPath, transpile } from '../../packaging/compile.ts'
import { launcherSettings } from '../../packaging/constants.ts'
import { scaled, tmpDir } from '../helpers/index.ts'

const run = promisify(execFile)
const ROOT = join(import.meta.dirname, '../..')

test('compiled modules: types erased, relative .ts imports rewritten, declaration files left out', () => {
  const js = transpile(
    [
      "import type { A } from './a.ts'",
      "import { b } from '../b.ts'",
      "export * from './c.ts'",
      "import pkg from '../package.json' with { type: 'json' }",
      "const d = await import('./d.ts')",
      '/** doc */',
      'export const e: A | number = b(d, pkg) as number',
    ].join('\n'),
    'x.ts',
  )
  assert.doesNotMatch(js, /\.ts['"]/, js)
  assert.match(js, /from "\.\.\/b\.js"/)
  assert.match(js, /export \* from "\.\/c\.js"/)
  assert.match(js, /import\("\.\/d\.js"\)/)
  assert.match(js, /'\.\.\/package\.json' with \{ type: 'json' \}/)
  assert.match(js, /export const e = b\(d, pkg\);/)
  assert.doesNotMatch(js, /\/a\.|doc/, 'type-only imports and comments are gone')
  assert.throws(() => transpile('const = 1', 'bad.ts'), /bad\.ts/)
  assert.equal(shippedPath('node/x.ts'), 'node/x.js')
  assert.equal(shippedPath('node/store/hypercore.d.ts'), undefined)
  assert.equal(shippedPath('node/api/dashboard/app.js'), 'node/api/dashboard/app.js')
})

/** Whether importing @libp2p/websockets (after the fix, or not) loads Node's undici. */
async function loadsUndici(fix: boolean): Promise<boolean> {
  const fixUrl = pathToFileURL(join(ROOT, 'node/http-undici-fix.ts')).href
  const script = [
    fix ? `await import(${JSON.stringify(fixUrl)})` : '',
    "await import('@libp2p/websockets')",
    "console.log(process.moduleLoadList.some((m) => m.includes('undici')))",
  ].join('\n')
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    timeout: scaled(30_000),
  })
  return JSON.parse(stdout.trim()) as boolean
}

test("the daemon's websockets transport loads no undici once node/http-undici-fix.ts ran", async () => {
  assert.equal(await loadsUndici(false), true, 'premise: without the fix, Node loads undici')
  assert.equal(await loadsUndici(true), false)
})

test('the launcher gives node start, seed start and agent run the daemon settings, nothing else; launcherSettings agrees', async (t) => {
  const pkg = await tmpDir(t, 'llmesh-launcher-')
  await mkdir(join(pkg, 'bin'))
  await mkdir(join(pkg, 'runtime', 'bin'), { recursive: true })
  await copyFile(join(ROOT, 'packaging', 'llmesh'), join(pkg, 'bin', 'llmesh'))
  await writeFile(join(pkg, 'runtime', 'bin', 'node'), '#!/bin/sh\necho "arenas=$MALLOC_ARENA_MAX $*"\n')
  await chmod(join(pkg, 'runtime', 'bin', 'node'), 0o755)
  const env = { ...process.env }
  delete env.MALLOC_ARENA_MAX
  const launch = async (args: string[]) =>
    (await run(join(pkg, 'bin', 'llmesh'), args, { env, timeout: scaled(10_000) })).stdout.trim()
  const app = `${join(pkg, 'app', 'cli', 'bin.js')}`
  for (const args of [
    ['node', 'start'],
    ['seed', 'start'],
    ['agent', 'run', '--', 'node', 'start'],
  ]) {
    assert.equal(
      await launch(args),
      `arenas=1 --max-semi-space-size=2 --heap-growing-percent=200 --disable-warning=ExperimentalWarning ${app} ${args.join(' ')}`,
    )
    // the TypeScript copy of the rule (benchmarks and LAN tests start daemons with it) says the same
    const { flags, env: e } = launcherSettings(args)
    assert.equal(
      await launch(args),
      `arenas=${e.MALLOC_ARENA_MAX} ${[...flags, '--disable-warning=ExperimentalWarning'].join(' ')} ${app} ${args.join(' ')}`,
    )
  }
  for (const args of [['status'], ['node', 'status'], ['agent', 'status']]) {
    assert.equal(await launch(args), `arenas= --disable-warning=ExperimentalWarning ${app} ${args.join(' ')}`)
    assert.deepEqual(launcherSettings(args), { flags: [], env: {} })
  }
  // no --optimize-for-size: it caps V8's young generation at 1 MB, and transfers spent their time in the GC
  assert.ok(!(await launch(['node', 'start'])).includes('--optimize-for-size'))
})

test("the bundle's modules keep their own import.meta: a path built from it points at the module's compiled file", async (t) => {
  const app = await tmpDir(t, 'llmesh-bundle-meta-')
  const shipped = join(app, 'node', 'inference', 'worker-process.js')
  const source = [
    'export const url = import.meta.url',
    'export const dir = import.meta.dirname',
    "export const worker = new URL('./worker.js', import.meta.url).href",
  ].join('\n')
  // the bundle's output module, in app/cli, holding that module's code
  await mkdir(join(app, 'cli'), { recursive: true })
  const out = join(app, 'cli', 'chunk-TEST.js')
  await writeFile(out, rewriteImportMeta(source, shipped, join(app, 'cli')))
  const m = (await import(pathToFileURL(out).href)) as { url: string; dir: string; worker: string }
  assert.equal(m.url, pathToFileURL(shipped).href)
  assert.equal(m.dir, join(app, 'node', 'inference'))
  assert.equal(m.worker, pathToFileURL(join(app, 'node', 'inference', 'worker.js')).href)
})

test("the bundle reads the package's package.json at run time, from app/cli/ where its modules are", () => {
  const js = [
    "import pkg from '../../package.json' with { type: 'json' }",
    'import other from "../package.json" with { type: "json" }',
    "import x from './package.json.js'",
  ].join('\n')
  assert.equal(
    rewritePackageJsonImport(js),
    [
      "import pkg from '../package.json' with { type: 'json' }",
      'import other from \'../package.json\' with { type: "json" }',
      "import x from './package.json.js'",
    ].join('\n'),
  )
})
