/**
 * Device variants of the idle-footprint benchmarks (bench/idle.ts, bench/idle-agent.ts): each
 * `--device "<name>=<ts|js|bin> [VAR=value ...] [node flags ...]"`. `ts` runs the TypeScript
 * sources (cli/bin.ts, through Node's type stripper), `js` the sources compiled as the package ships
 * them (packaging/compile.ts, into a scratch tree), anything else is the path of a cli/bin.ts to
 * run (another commit: `git archive <commit> | tar -x -C <dir>`, with a node_modules link).
 */
import { symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { sourceFiles } from '../packaging/build.ts'
import { bundleCli } from '../packaging/bundle.ts'
import { emitFile, shippedPath } from '../packaging/compile.ts'
import { APP_DIRS } from '../packaging/constants.ts'

/** Repository root. */
export const REPO = join(import.meta.dirname, '..')

/** One device to run: its name, which code it runs, its environment and node flags. */
export interface DeviceSpec {
  name: string
  /** `ts`, `js`, `bundle`, or the path of a cli/bin.ts. */
  entry: string
  env: Record<string, string>
  flags: string[]
}

/** Parses one `--device` value. */
export function parseDevice(spec: string): DeviceSpec {
  const [name, rest] = [spec.slice(0, spec.indexOf('=')), spec.slice(spec.indexOf('=') + 1)]
  const [entry, ...words] = rest.split(/\s+/).filter(Boolean)
  if (name === '' || entry === undefined) throw new Error(`--device "<name>=<ts|js|bin path> …": ${spec}`)
  const env = words.filter((w) => !w.startsWith('-') && w.includes('='))
  return {
    name,
    entry,
    env: Object.fromEntries(env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
    flags: words.filter((w) => !env.includes(w)),
  }
}

/** The `--device` value of a spec (for printing the command line). */
export function deviceArg(d: DeviceSpec): string {
  return `--device "${d.name}=${[d.entry, ...Object.entries(d.env).map(([k, v]) => `${k}=${v}`), ...d.flags].join(' ')}"`
}

/** The package's JavaScript, compiled from this checkout into `<dir>/app` (its node_modules linked), bundled or not. */
async function compiledBin(dir: string, bundled = false): Promise<string> {
  const app = join(dir, bundled ? 'app-bundle' : 'app')
  for (const f of sourceFiles(REPO)) {
    const dest = shippedPath(f)
    if (dest !== undefined) emitFile(join(REPO, f), join(app, dest))
  }
  await symlink(join(REPO, 'node_modules'), join(app, 'node_modules'))
  if (bundled) bundleCli(app, APP_DIRS)
  return join(app, 'cli', 'bin.js')
}

/** Resolves each spec's entry to a bin path (compiling into `dir` when a spec is `js`). */
export async function binsOf(specs: DeviceSpec[], dir: string): Promise<(entry: string) => string> {
  const bins: Record<string, string> = {
    ts: join(REPO, 'cli', 'bin.ts'),
    js: specs.some((d) => d.entry === 'js') ? await compiledBin(dir) : '',
    bundle: specs.some((d) => d.entry === 'bundle') ? await compiledBin(dir, true) : '',
  }
  return (entry) => bins[entry] ?? entry
}
