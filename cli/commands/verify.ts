/**
 * `llmesh verify <file> [--bundle <bundle>] --fleet <dir> | --trust-root <file>`: checks offline,
 * against the fleet's trust root,
 * - a model file against its signed release manifest (`--bundle`: a wire envelope or a raw
 *   Sigstore bundle; verify-release.ts), or
 * - an llmesh package (`llmesh-<v>-linux-<arch>.tar.gz`) or image archive (`llmesh-<v>-oci.tar`)
 *   against the operator's signature of its SHA256SUMS (`SHA256SUMS.sigstore.json` beside it
 *   unless `--bundle` names it; package-run.ts).
 * Which check runs is read from the bundle: a package statement, or else a release.
 */
import type { Command } from 'commander'
import { action, print, UsageError } from '../output.ts'

interface VerifyOptions {
  bundle?: string
  fleet?: string
  trustRoot?: string
  json?: boolean
}

async function isPackageSignature(bundle: string | undefined): Promise<boolean> {
  if (bundle === undefined) return true
  const { readBoundedText } = await import('./package-run.ts')
  const { isPackageBundle } = await import('../../protocols/signing/package.ts')
  const { MAX_PACKAGE_SIGNATURE_BYTES } = await import('../../protocols/constants.ts')
  const text = await readBoundedText(bundle, MAX_PACKAGE_SIGNATURE_BYTES, true)
  if (text === undefined) return false // the release path says the bundle is missing
  try {
    return isPackageBundle(JSON.parse(text))
  } catch {
    return false
  }
}

/** Registers `llmesh verify`. */
export function registerVerify(program: Command): void {
  program
    .command('verify <file>')
    .description('check a model file or an llmesh package offline against its signature and the fleet trust root')
    .option(
      '--bundle <path>',
      'release: wire envelope or Sigstore bundle (JSON); package: default SHA256SUMS.sigstore.json beside it',
    )
    .option('--fleet <dir>', 'fleet directory (its trust-root.json)')
    .option('--trust-root <file>', 'a trust-root.json file (instead of --fleet)')
    .option('--json', 'print JSON')
    .action(
      action(async (file: string, o: VerifyOptions) => {
        const now = Date.now()
        const { trustRootOf, verifyPackageFile } = await import('./package-run.ts')
        if (o.bundle === undefined && !file.endsWith('.tar.gz') && !file.endsWith('-oci.tar'))
          throw new UsageError('--bundle is required for a model file (a package is llmesh-….tar.gz or …-oci.tar)')
        if (await isPackageSignature(o.bundle)) {
          const r = await verifyPackageFile(file, o, now)
          print(
            o,
            r,
            (x) =>
              `OK package ${x.package} of fleet ${x.fleet}\n  sha256 ${x.sha256}\n  signed by ${x.signer} at ${new Date(x.signed_at).toISOString()}${x.sums_checked ? '' : '\n  (no SHA256SUMS beside the signature; checked against the signed list)'}`,
          )
          return
        }
        if (o.bundle === undefined) throw new UsageError('--bundle is required for a model file')
        const { verifyReleaseFile } = await import('./verify-release.ts')
        const r = await verifyReleaseFile(file, o.bundle, await trustRootOf(o, now), now)
        print(o, r, (x) => `OK ${x.model}@${x.version} (seq ${x.seq})\n  sha256 ${x.sha256}\n  signed by ${x.signer}`)
      }),
    )
}
