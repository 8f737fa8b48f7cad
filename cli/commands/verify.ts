/**
 * `llmesh verify <file> --bundle <bundle> --fleet <dir>`: checks a release file offline against
 * its signed manifest (a wire envelope or a raw Sigstore bundle) and the fleet's trust root
 * (verify-release.ts, loaded only when the command runs).
 */
import type { Command } from 'commander'
import { action, print } from '../output.ts'

/** Registers `llmesh verify`. */
export function registerVerify(program: Command): void {
  program
    .command('verify <file>')
    .description('check a release file offline against its signed manifest and the fleet trust root')
    .requiredOption('--bundle <path>', 'wire envelope or Sigstore bundle (JSON) of the release')
    .requiredOption('--fleet <dir>', 'fleet directory (trust-root.json)')
    .option('--json', 'print JSON')
    .action(
      action(async (file: string, o: { bundle: string; fleet: string; json?: boolean }) => {
        const { verifyReleaseFile } = await import('./verify-release.ts')
        const r = await verifyReleaseFile(file, o.bundle, o.fleet)
        print(o, r, (x) => `OK ${x.model}@${x.version} (seq ${x.seq})\n  sha256 ${x.sha256}\n  signed by ${x.signer}`)
      }),
    )
}
