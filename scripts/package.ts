/**
 * `npm run package [-- --arch x64 --arch arm64] [--out dist]`: builds the offline installable
 * packages `dist/llmesh-<version>-linux-<arch>.tar.gz` and `dist/SHA256SUMS` (packaging/build.ts).
 * Needs a finished `npm ci`; downloads only the Node runtime of each architecture (`npm pack
 * node-linux-<arch>`, cached in `<out>/.cache`). With `--fleet <dir>` it then signs SHA256SUMS with
 * that fleet's operator key (`<out>/SHA256SUMS.sigstore.json`, as `llmesh package sign`).
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { signPackageDir } from '../cli/commands/package-run.ts'
import { buildPackage } from '../packaging/build.ts'
import { type Arch, DEFAULT_OUT_DIR, TARGETS } from '../packaging/constants.ts'

const root = resolve(import.meta.dirname, '..')
const { values } = parseArgs({
  options: {
    arch: { type: 'string', multiple: true },
    out: { type: 'string', default: DEFAULT_OUT_DIR },
    fleet: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help === true) {
  process.stdout.write('usage: npm run package -- [--arch x64|arm64]... [--out dir] [--fleet dir]\n')
  process.exit(0)
}
const arches = (values.arch ?? Object.keys(TARGETS)) as string[]
for (const a of arches) {
  if (!(a in TARGETS)) {
    process.stderr.write(`unknown architecture ${a} (known: ${Object.keys(TARGETS).join(', ')})\n`)
    process.exit(2)
  }
}
const out = resolve(root, values.out)
const started = performance.now()
for (const arch of arches as Arch[]) {
  const t0 = performance.now()
  const built = buildPackage({ arch, root, out })
  const mb = (built.bytes / 1e6).toFixed(1)
  // the wall time includes removing the staging tree, which buildPackage's own figure does not
  process.stdout.write(`${built.tarball}  ${mb} MB  ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
  for (const l of built.manifest.left_out) process.stdout.write(`  left out ${l.path}: ${l.reason}\n`)
}
process.stdout.write(`${resolve(out, 'SHA256SUMS')}  total ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
if (values.fleet !== undefined) {
  const signed = await signPackageDir(out, resolve(values.fleet))
  process.stdout.write(`${signed.signature}  signed for fleet ${signed.fleet} by ${signed.keyid}\n`)
}
