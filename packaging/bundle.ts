/**
 * The package's CLI bundled and minified (esbuild, at build time only): `app/cli/bin.js` becomes
 * one entry module plus chunks beside it (`app/cli/chunk-*.js`, …), each loaded when a command
 * first needs it (code splitting on the CLI's dynamic imports), so a running daemon holds a few
 * dozen minified modules instead of ~1,800 modules' full sources (docs/benchmarks.md, "Idle
 * footprint of a device"). The compiled per-file modules stay in the package beside it: child
 * processes start from them (the inference worker, `agent run`'s configuration reader), the
 * dashboard's files are read from there, and they are what a stack trace of those processes names.
 *
 * What stays out of the bundle, loaded from `app/node_modules` as before (BUNDLE_EXTERNAL_ROOTS; the
 * packages they depend on are then loaded by them from there, each at the version npm installed for
 * it): native modules and the packages around them, and the packages our code patches or reaches
 * into (node/mesh/pnet-cipher-fix.ts, node/store/feed-proofs.ts), so that it gets the instance the
 * rest of the process uses, and fastify's schema compilers, which fastify never requires here. The
 * build fails if a native module would be bundled anyway, or code no daemon runs (BUNDLE_DEAD_INPUTS).
 *
 * A few dependencies are bundled from patched copies (packaging/bundle-patches.ts: what and why).
 *
 * The project's own `import.meta.url` / `import.meta.dirname` are rewritten to the URL of the
 * module's compiled file in the package, so paths built from them (node/module-path.ts, the
 * dashboard) point where they did before bundling.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { buildSync } from 'esbuild'
import { patchPackages } from './bundle-patches.ts'
import { BUNDLE_DEAD_INPUTS, BUNDLE_EXTERNAL_ROOTS } from './constants.ts'

/** The package's package.json as every bundle module imports it (all are in `app/cli/`). */
const BUNDLE_PACKAGE_JSON = '../package.json'

/** What bundleCli made. */
export interface BundleResult {
  /** Files written under `app/cli/` (the entry and its chunks). */
  files: string[]
  bytes: number
}

/** The module's source with its `import.meta.url`/`dirname` pointing at `shipped` (a path under `app`), from `outDir`. */
export function rewriteImportMeta(source: string, shipped: string, outDir: string): string {
  const rel = JSON.stringify(relative(outDir, shipped).split(sep).join('/'))
  const url = `new URL(${rel}, import.meta.url).href`
  return source
    .replaceAll('import.meta.url', url)
    .replaceAll('import.meta.dirname', `decodeURIComponent(new URL(".", ${url}).pathname).replace(/\\/$/, "")`)
}

/**
 * The module's source with its import of the package's package.json pointing at `app/package.json`
 * from `app/cli/`, where every output module is: it stays a file read at run time, not inlined, so
 * the version is the package's own (a package whose package.json was edited after the build, as the
 * LAN tests' version-bumped packages are, says the edited version).
 */
export function rewritePackageJsonImport(source: string): string {
  return source.replace(/from\s*(['"])(?:\.\.\/)+package\.json\1/g, `from '${BUNDLE_PACKAGE_JSON}'`)
}

/** The bundled inputs (some of their bytes in an output) that BUNDLE_DEAD_INPUTS names. */
export function deadInputs(outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>): string[] {
  const bundled = Object.values(outputs).flatMap((o) =>
    Object.entries(o.inputs)
      .filter(([, i]) => i.bytesInOutput > 0)
      .map(([path]) => path),
  )
  return [...new Set(bundled)].filter((p) => BUNDLE_DEAD_INPUTS.some((r) => r.test(p)))
}

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => join(e.parentPath, e.name))
}

/**
 * Bundles `<app>/cli/bin.js` (the compiled tree, packaging/compile.ts, with `<app>/node_modules`)
 * into `<app>/cli/`: the entry replaces the compiled bin.js, its chunks go beside it.
 */
export function bundleCli(app: string, dirs: readonly string[]): BundleResult {
  const outDir = join(app, 'cli')
  // the compiled modules, their import.meta rewritten, in a scratch copy beside app/ (so that
  // app/node_modules resolves the packages, and the shipped modules stay as they are)
  const src = mkdtempSync(join(dirname(app), '.bundle-src-'))
  try {
    for (const d of dirs) {
      for (const f of jsFiles(join(app, d))) {
        const dest = join(src, relative(app, f))
        cpSync(f, dest)
        writeFileSync(dest, rewritePackageJsonImport(rewriteImportMeta(readFileSync(f, 'utf8'), f, outDir)))
      }
    }
    cpSync(join(app, 'package.json'), join(src, 'package.json'))
    symlinkSync(join(app, 'node_modules'), join(src, 'node_modules'))
    const alias = patchPackages(app, join(src, '.patched')) // bundle-patches.ts
    const result = buildSync({
      entryPoints: [join(src, 'cli', 'bin.js')],
      outdir: outDir,
      allowOverwrite: true,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node22',
      minify: true,
      // class and function names stay: error classes, logs and pino's error serializer read them
      keepNames: true,
      alias,
      external: [...BUNDLE_EXTERNAL_ROOTS.flatMap((n) => [n, `${n}/*`]), BUNDLE_PACKAGE_JSON],
      // bundled CommonJS packages call require(): give each output module one
      banner: {
        js: "import { createRequire as __llmeshRequire } from 'node:module'; const require = __llmeshRequire(import.meta.url);",
      },
      metafile: true,
      logLevel: 'silent',
      legalComments: 'none',
    })
    const inputs = Object.keys(result.metafile.inputs)
    const native = inputs.filter((i) => i.endsWith('.node') || /[\\/]prebuilds[\\/]/.test(i))
    if (native.length > 0) throw new Error(`a native module would be bundled: ${native.join(', ')}`)
    const dead = deadInputs(result.metafile.outputs)
    if (dead.length > 0) throw new Error(`code no daemon runs would be bundled: ${dead.join(', ')}`)
    const files = Object.keys(result.metafile.outputs).map((o) =>
      relative(app, o.startsWith(sep) ? o : join(process.cwd(), o)),
    )
    const bytes = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0)
    if (!existsSync(join(outDir, 'bin.js'))) throw new Error('the bundle wrote no cli/bin.js')
    return { files, bytes }
  } finally {
    rmSync(src, { recursive: true, force: true })
  }
}
