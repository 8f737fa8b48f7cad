/**
 * The package ships JavaScript, not TypeScript: each `.ts` source is transpiled on its own
 * (TypeScript's `transpileModule`: types erased, relative `./x.ts` imports rewritten to `./x.js`,
 * no type check; `npx tsc --noEmit` is the check) to `.js` beside where the `.ts` would have gone.
 *
 * Why: Node runs `.ts` through its built-in type stripper (amaro, WebAssembly), which a daemon then
 * holds for its whole life: ~13 MiB anonymous and ~17 MiB RSS of an idle device daemon
 * (docs/benchmarks.md, "Idle footprint of a device"). Development keeps running the `.ts` files.
 *
 * Paths built at run time from `import.meta.url` (the inference worker, the demo's CLI) name their
 * sibling with the running module's own extension (node/module-path.ts), so they work either way.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import ts from 'typescript'

/** Compiler options of the emitted modules: what Node 22 runs as ES modules. */
const OPTIONS: ts.CompilerOptions = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2023,
  rewriteRelativeImportExtensions: true,
  verbatimModuleSyntax: true,
  removeComments: true,
}

/**
 * Where a source file goes in the package: `x/y.ts` → `x/y.js`, a declaration file (`.d.ts`: types
 * only) nowhere (undefined), any other file unchanged.
 */
export function shippedPath(path: string): string | undefined {
  if (path.endsWith('.d.ts')) return undefined
  return path.endsWith('.ts') ? `${path.slice(0, -3)}.js` : path
}

/** The JavaScript of one TypeScript module; throws on a syntax error. */
export function transpile(source: string, fileName: string): string {
  const out = ts.transpileModule(source, { compilerOptions: OPTIONS, fileName, reportDiagnostics: true })
  const errors = out.diagnostics ?? []
  if (errors.length > 0) {
    const text = errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('; ')
    throw new Error(`${fileName}: ${text}`)
  }
  return out.outputText
}

/**
 * Writes `src` to `dest`: a `.ts` source is transpiled (dest should be its shippedPath), anything else
 * is copied byte for byte.
 */
export function emitFile(src: string, dest: string): void {
  mkdirSync(dirname(dest), { recursive: true })
  const bytes = readFileSync(src)
  writeFileSync(dest, src.endsWith('.ts') ? transpile(bytes.toString('utf8'), src) : bytes)
}
