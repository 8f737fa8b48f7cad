/**
 * Dependencies patched in the bundle (packaging/bundle.ts), each for a measured cost on a device.
 *
 * `@libp2p/peer-store` sorts a peer's addresses, protocols and metadata keys with
 * `String.prototype.localeCompare` before it stores the record. The first call makes V8 load ICU's
 * collation data from the node binary: ~2.4 MiB of an idle device's RSS (docs/benchmarks.md, "Idle
 * footprint", fifth and sixth passes). The order only has to be deterministic (it is this node's
 * own stored record; nothing signed or sent depends on it) and the strings are multiaddrs, protocol
 * ids and tag names, so a comparison of UTF-16 code units does the same job. The bundle uses a copy
 * of the package with those calls rewritten, through an esbuild alias; a file that no longer has
 * exactly the calls expected fails the build, so an upgrade of the package is looked at again.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** What is patched: per package, the files and how many `localeCompare` calls each holds. */
export const CODE_UNIT_COMPARE_PATCHES = [
  {
    pkg: '@libp2p/peer-store',
    entry: 'dist/src/index.js',
    files: { 'dist/src/utils/dedupe-addresses.js': 1, 'dist/src/utils/to-peer-pb.js': 2 },
  },
] as const

const COMPARE_FN = '__llmeshCodeUnitCompare'
const COMPARE_DEF = `const ${COMPARE_FN} = (a, b) => (a < b ? -1 : a > b ? 1 : 0);\n`
/** `x.localeCompare(y)` where x and y are identifiers, member chains or a call without arguments. */
const LOCALE_COMPARE = /([\w$]+(?:\.[\w$]+)*(?:\(\))?)\.localeCompare\(([\w$]+(?:\.[\w$]+)*(?:\(\))?)\)/g

/** `source` with every simple `x.localeCompare(y)` replaced by a code-unit comparison; `replaced` counts them. */
export function codeUnitCompare(source: string): { source: string; replaced: number } {
  let replaced = 0
  const out = source.replace(LOCALE_COMPARE, (_m, a: string, b: string) => {
    replaced++
    return `${COMPARE_FN}(${a}, ${b})`
  })
  return { source: replaced > 0 ? COMPARE_DEF + out : out, replaced }
}

/**
 * Copies each patched package from `<app>/node_modules` to `<scratch>/node_modules` (`scratch` a
 * directory of the bundle's scratch tree, never app/: the copy's own imports then resolve from the
 * scratch tree's link to app/node_modules, one level up), rewrites its files, and
 * returns the esbuild aliases that make the bundle use the copies. Throws when a file does not hold
 * exactly the expected calls.
 */
export function patchPackages(app: string, scratch: string): Record<string, string> {
  const alias: Record<string, string> = {}
  for (const p of CODE_UNIT_COMPARE_PATCHES) {
    const dir = join(scratch, 'node_modules', p.pkg)
    cpSync(join(app, 'node_modules', p.pkg), dir, { recursive: true, dereference: true })
    for (const [file, want] of Object.entries(p.files)) {
      const path = join(dir, file)
      const { source, replaced } = codeUnitCompare(readFileSync(path, 'utf8'))
      if (replaced !== want || source.includes('.localeCompare(')) {
        throw new Error(
          `bundle patch: ${p.pkg}/${file} has ${replaced} localeCompare calls to rewrite, expected ${want}`,
        )
      }
      writeFileSync(path, source)
    }
    alias[p.pkg] = join(dir, p.entry)
  }
  return alias
}
