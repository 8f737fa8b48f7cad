/**
 * `llmesh package sign <dir> --fleet <dir>`: signs the SHA256SUMS of built packages
 * (`npm run package`) with the fleet's operator key, writing `SHA256SUMS.sigstore.json` beside it;
 * `llmesh verify <package> --fleet <dir>|--trust-root <file>` checks a package against it
 * (package-run.ts, loaded only when the command runs).
 */
import type { Command } from 'commander'
import { action, print } from '../output.ts'

/** Registers `llmesh package`. */
export function registerPackage(program: Command): void {
  const pkg = program.command('package').description('sign llmesh packages (llmesh-<v>-linux-<arch>.tar.gz)')
  pkg
    .command('sign <dir>')
    .description('sign <dir>/SHA256SUMS with the operator key: writes <dir>/SHA256SUMS.sigstore.json')
    .requiredOption('--fleet <dir>', 'fleet directory holding operator.key')
    .option('--json', 'print JSON')
    .action(
      action(async (dir: string, o: { fleet: string; json?: boolean }) => {
        const { signPackageDir } = await import('./package-run.ts')
        const r = await signPackageDir(dir, o.fleet)
        print(o, r, (x) => `signed ${x.packages.join(', ')} for fleet ${x.fleet} (key ${x.keyid})\n  ${x.signature}`)
      }),
    )
}
