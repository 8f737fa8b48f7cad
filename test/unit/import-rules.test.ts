/**
 * The layer rules over the whole tree, from the source text of every module:
 *   protocols/ imports only protocols/ (and packages); node/ never imports seed/, cli/ or test/;
 *   seed/ never imports cli/ or test/; cli/ never imports test/; and no module imports itself back
 *   through a cycle (value and type imports alike: a cycle means two modules are one concern).
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'

const ROOT = resolve(import.meta.dirname, '../..')
const LAYERS = ['protocols', 'node', 'seed', 'cli', 'test', 'bench'] as const
/** For each layer, the layers it must not import. */
const FORBIDDEN: Record<string, string[]> = {
  protocols: ['node', 'seed', 'cli', 'test', 'bench'],
  node: ['seed', 'cli', 'test', 'bench'],
  seed: ['cli', 'test', 'bench'],
  cli: ['test', 'bench'],
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|js)$/.test(e.name))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
}

/**
 * Relative imports (static `from '…'`, `import('…')`, `export … from '…'`) of one module, resolved.
 * Comments are dropped first: JSDoc `@typedef {import('…')}` in the dashboard's plain JS names types only.
 */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = []
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  for (const m of code.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    out.push(relative(ROOT, resolve(ROOT, dirname(file), m[1] as string)))
  }
  return out
}

const files = LAYERS.flatMap(sources)
const graph = new Map(files.map((f) => [f, importsOf(f, readFileSync(join(ROOT, f), 'utf8'))]))

test('the tree is read (the rules below check something)', () => {
  assert.ok(files.filter((f) => f.startsWith('node/')).length > 50)
  assert.ok((graph.get('node/daemon.ts') ?? []).length > 5)
})

test('no layer imports a layer it must not', () => {
  const bad: string[] = []
  for (const [f, deps] of graph) {
    const layer = f.split('/')[0] as string
    for (const d of deps) if (FORBIDDEN[layer]?.includes(d.split('/')[0] as string)) bad.push(`${f} -> ${d}`)
  }
  assert.deepEqual(bad, [])
})

test('no import cycles', () => {
  const state = new Map<string, 'open' | 'done'>()
  const cycles = new Set<string>()
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return
    if (state.get(f) === 'open') {
      cycles.add([...path.slice(path.indexOf(f)), f].join(' -> '))
      return
    }
    state.set(f, 'open')
    for (const d of graph.get(f) ?? []) if (graph.has(d)) visit(d, [...path, f])
    state.set(f, 'done')
  }
  for (const f of graph.keys()) visit(f, [])
  assert.deepEqual([...cycles], [])
})

/**
 * One constructor order (issue #12): a factory or constructor that takes both its collaborators
 * (`…Components`) and its options (`…Init`) takes them as `(components, init)`, like js-libp2p.
 */
test('factories take (components, init), never (init, components)', () => {
  const reversed = /\(\s*init\??:\s*[\w.]*Init\b[^,()]*,\s*\w+\??:\s*[\w.]*Components\b/
  const ordered = /\(\s*\w+\??:\s*[\w.]*Components\b[^,()]*,\s*init\??:\s*[\w.]*Init\b/g
  const bad: string[] = []
  let good = 0
  for (const f of files.filter((x) => /^(protocols|node|seed|cli)\//.test(x))) {
    const text = readFileSync(join(ROOT, f), 'utf8')
    if (reversed.test(text)) bad.push(f)
    good += [...text.matchAll(ordered)].length
  }
  assert.ok(good >= 15, `the scan finds the (components, init) factories (${good})`)
  assert.deepEqual(bad, [])
})
