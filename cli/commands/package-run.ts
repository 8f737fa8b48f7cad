/**
 * Package signatures on disk (protocols/signing/package.ts does the cryptography):
 * - `signPackageDir(dir, fleetDir)`: signs `<dir>/SHA256SUMS` with the fleet's operator key and
 *   writes `<dir>/SHA256SUMS.sigstore.json` (`llmesh package sign`, `npm run package -- --fleet`);
 * - `verifyPackageFile(file, …)`: checks a package offline against that signature (the one beside
 *   it unless named), the SHA256SUMS beside the signature when there is one, and the trust root of
 *   a fleet directory or a trust-root.json file (`llmesh verify <package>`).
 * Both read their inputs bounded; every refusal is a VerificationError, FleetError or CliError.
 */
import { open, rename, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { loadFleet, loadTrustRoot, sha256File, TRUST_ROOT_FILE } from '../../node/fleet/index.ts'
import {
  MAX_PACKAGE_SIGNATURE_BYTES,
  MAX_PACKAGE_SUMS_BYTES,
  PACKAGE_SIGNATURE_FILE,
  PACKAGE_SUMS_FILE,
} from '../../protocols/constants.ts'
import { VerificationError } from '../../protocols/errors.ts'
import type { TrustRoot } from '../../protocols/schemas/index.ts'
import { parsePackageSums, signPackageSums, verifyPackage } from '../../protocols/signing/package.ts'
import { CliError, UsageError } from '../output.ts'

/** Reads at most `max` bytes of `path` as UTF-8; `undefined` when absent and `optional`. */
export async function readBoundedText(path: string, max: number, optional = false): Promise<string | undefined> {
  let fh: Awaited<ReturnType<typeof open>>
  try {
    fh = await open(path, 'r')
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`, 'ERR_INVALID_INPUT')
  }
  try {
    const buf = Buffer.alloc(max + 1)
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0)
    if (bytesRead > max) throw new VerificationError('ERR_OVERSIZED', `${path} is larger than ${max} bytes`)
    return buf.subarray(0, bytesRead).toString('utf8')
  } finally {
    await fh.close()
  }
}

/** What `package sign --json` prints. */
export interface SignReport {
  signature: string
  fleet: string
  keyid: string
  packages: string[]
}

/** Signs `<dir>/SHA256SUMS` with the operator key of `fleetDir`; writes `<dir>/SHA256SUMS.sigstore.json`. */
export async function signPackageDir(dir: string, fleetDir: string, now = Date.now()): Promise<SignReport> {
  const fleet = await loadFleet(fleetDir, { now })
  if (fleet.operatorSigner === undefined) throw new CliError(`${fleetDir} holds no operator key`, 'ERR_NO_OPERATOR_KEY')
  const sums = (await readBoundedText(join(dir, PACKAGE_SUMS_FILE), MAX_PACKAGE_SUMS_BYTES)) as string
  const bundle = await signPackageSums(sums, fleet.root.fleet, fleet.operatorSigner, now)
  const out = join(dir, PACKAGE_SIGNATURE_FILE)
  await writeFile(`${out}.tmp`, `${JSON.stringify(bundle, null, 2)}\n`)
  await rename(`${out}.tmp`, out)
  return {
    signature: out,
    fleet: fleet.root.fleet,
    keyid: fleet.operatorSigner.keyid,
    packages: parsePackageSums(sums).map((s) => s.name),
  }
}

/** Where the trust root comes from: a fleet directory or a trust-root.json file (exactly one). */
export interface TrustSource {
  fleet?: string
  trustRoot?: string
}

/** The verified trust root of `--fleet <dir>` or `--trust-root <file>`. */
export async function trustRootOf(src: TrustSource, now: number): Promise<TrustRoot> {
  if ((src.fleet === undefined) === (src.trustRoot === undefined))
    throw new UsageError('give exactly one of --fleet <dir> and --trust-root <file>')
  return loadTrustRoot(src.trustRoot ?? join(src.fleet as string, TRUST_ROOT_FILE), now)
}

/** What `verify <package> --json` prints on success. */
export interface PackageVerifyReport {
  ok: true
  file: string
  package: string
  sha256: string
  size: number
  fleet: string
  signer: string
  signed_at: number
  /** Whether a SHA256SUMS lay beside the signature (and was found to be the signed one). */
  sums_checked: boolean
}

/** Verifies a package file; throws VerificationError (or FleetError, CliError) with the reason. */
export async function verifyPackageFile(
  file: string,
  src: TrustSource & { bundle?: string },
  now = Date.now(),
): Promise<PackageVerifyReport> {
  const trust = await trustRootOf(src, now)
  const bundlePath = src.bundle ?? join(dirname(file), PACKAGE_SIGNATURE_FILE)
  const text = (await readBoundedText(bundlePath, MAX_PACKAGE_SIGNATURE_BYTES)) as string
  let bundle: unknown
  try {
    bundle = JSON.parse(text)
  } catch {
    throw new VerificationError('ERR_SCHEMA', `${bundlePath} is not JSON`)
  }
  const sumsText = await readBoundedText(join(dirname(bundlePath), PACKAGE_SUMS_FILE), MAX_PACKAGE_SUMS_BYTES, true)
  let digest: { sha256: string; size: number }
  try {
    digest = await sha256File(file)
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, 'ERR_INVALID_INPUT')
  }
  const name = basename(file)
  const res = verifyPackage(bundle, {
    trust,
    file: { name, sha256: digest.sha256 },
    ...(sumsText === undefined ? {} : { sumsText }),
  })
  if (!res.ok) throw res.error
  if (sumsText !== undefined) {
    // the signed text lists it with the same digest (verifyPackage checked the text is the signed one)
    const listed = parsePackageSums(sumsText).find((s) => s.name === name)
    if (listed?.sha256 !== digest.sha256)
      throw new VerificationError('ERR_DIGEST_MISMATCH', `${name} differs from SHA256SUMS`)
  }
  return {
    ok: true,
    file,
    package: name,
    sha256: digest.sha256,
    size: digest.size,
    fleet: res.statement.predicate.fleet,
    signer: res.keyid,
    signed_at: res.statement.predicate.signed_at,
    sums_checked: sumsText !== undefined,
  }
}
