/**
 * Package signatures: the operator key signs the SHA256SUMS of a set of llmesh packages
 * (`llmesh-<v>-linux-<arch>.tar.gz`, scripts/package.ts, and the OCI archive of the container image,
 * `llmesh-<v>-oci.tar`, packaging/container/build-image.sh --save) the way it signs a release, as a Sigstore
 * bundle holding a DSSE envelope of an in-toto statement. Its subjects are the packages SHA256SUMS
 * lists (name and sha256) and its predicate (type PREDICATE_TYPE_PACKAGE, so it can never pass as a
 * release) names the fleet and the sha256 of the SHA256SUMS text itself.
 *
 * `verifyPackage` checks, offline and without throwing: the bundle against the trust root's keys
 * (open-bundle.ts: ERR_SCHEMA, ERR_UNKNOWN_SIGNER, ERR_BAD_SIGNATURE), the statement's form
 * (ERR_SCHEMA), its fleet (ERR_WRONG_FLEET), the SHA256SUMS text when given (ERR_DIGEST_MISMATCH
 * when it is not the signed one) and the package's name and sha256 (ERR_DIGEST_MISMATCH when not
 * listed or different).
 */
import { createHash } from 'node:crypto'
import { bundleToJSON } from '@sigstore/bundle'
import * as z from 'zod'
import {
  IN_TOTO_STATEMENT_TYPE,
  MAX_PACKAGE_SIGNATURE_BYTES,
  MAX_PACKAGE_SUMS_BYTES,
  MAX_PACKAGES_PER_SUMS,
  PAYLOAD_TYPE_IN_TOTO,
  PREDICATE_TYPE_PACKAGE,
} from '../constants.ts'
import { canonicalBytes, isCanonicalJsonBytes, parseJsonBytes } from '../encoding.ts'
import { VerificationError } from '../errors.ts'
import { FleetId, Sha256Hex, type TrustRoot } from '../schemas/index.ts'
import { openOperatorBundle } from './open-bundle.ts'
import type { BundleJson } from './operator.ts'
import { toSigstoreSigner } from './operator.ts'
import type { OperatorSigner } from './operator-key.ts'

/** A package file name as SHA256SUMS lists it: a package, or the image's OCI archive. */
export const PackageFileName = z
  .string()
  .regex(/^llmesh-[0-9A-Za-z.+-]{1,64}-(linux-[a-z0-9]{1,16}\.tar\.gz|oci\.tar)$/)

/** One package of a SHA256SUMS. */
export interface PackageSum {
  name: string
  sha256: string
}

/** in-toto Statement v1 over the packages of one SHA256SUMS. */
export const PackageStatement = z
  .object({
    _type: z.literal(IN_TOTO_STATEMENT_TYPE),
    subject: z
      .array(z.object({ name: PackageFileName, digest: z.object({ sha256: Sha256Hex }).strict() }).strict())
      .min(1)
      .max(MAX_PACKAGES_PER_SUMS),
    predicateType: z.literal(PREDICATE_TYPE_PACKAGE),
    predicate: z.object({ fleet: FleetId, sums_sha256: Sha256Hex, signed_at: z.number().int().nonnegative() }).strict(),
  })
  .strict()
export type PackageStatement = z.infer<typeof PackageStatement>

const SUM_LINE = /^([0-9a-f]{64}) {2}(\S+)$/

/** Parses a SHA256SUMS text (`<sha256>  <file>` lines of llmesh packages); throws VerificationError ERR_SCHEMA. */
export function parsePackageSums(text: string): PackageSum[] {
  if (Buffer.byteLength(text) > MAX_PACKAGE_SUMS_BYTES)
    throw new VerificationError('ERR_OVERSIZED', `SHA256SUMS is larger than ${MAX_PACKAGE_SUMS_BYTES} bytes`)
  const lines = text.split('\n')
  if (lines.pop() !== '') throw new VerificationError('ERR_SCHEMA', 'SHA256SUMS does not end with a newline')
  if (lines.length === 0) throw new VerificationError('ERR_SCHEMA', 'SHA256SUMS lists no package')
  if (lines.length > MAX_PACKAGES_PER_SUMS)
    throw new VerificationError('ERR_OVERSIZED', `SHA256SUMS lists more than ${MAX_PACKAGES_PER_SUMS} packages`)
  const sums = lines.map((line, i) => {
    const m = SUM_LINE.exec(line)
    if (m === null || !PackageFileName.safeParse(m[2]).success)
      throw new VerificationError(
        'ERR_SCHEMA',
        `SHA256SUMS line ${i + 1} is not "<sha256>  llmesh-….tar.gz" (or llmesh-…-oci.tar)`,
      )
    return { sha256: m[1] as string, name: m[2] as string }
  })
  if (new Set(sums.map((s) => s.name)).size !== sums.length)
    throw new VerificationError('ERR_SCHEMA', 'SHA256SUMS lists a package twice')
  return sums
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** The statement signing a SHA256SUMS text for `fleet`. */
export function packageStatement(sumsText: string, fleet: string, now: number): PackageStatement {
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: parsePackageSums(sumsText).map((s) => ({ name: s.name, digest: { sha256: s.sha256 } })),
    predicateType: PREDICATE_TYPE_PACKAGE,
    predicate: { fleet, sums_sha256: sha256Hex(sumsText), signed_at: now },
  }
}

/** Signs a SHA256SUMS text with the operator key; returns the Sigstore bundle JSON. */
export async function signPackageSums(
  sumsText: string,
  fleet: string,
  key: OperatorSigner,
  now: number,
): Promise<BundleJson> {
  const payload = canonicalBytes(packageStatement(sumsText, fleet, now))
  // loaded on first use: only signers need it (~9 MB RSS a device daemon would hold for nothing)
  const { DSSEBundleBuilder } = await import('@sigstore/sign')
  const builder = new DSSEBundleBuilder({ signer: toSigstoreSigner(key), witnesses: [] })
  const bundle = await builder.create({ data: Buffer.from(payload), type: PAYLOAD_TYPE_IN_TOTO })
  return JSON.parse(JSON.stringify(bundleToJSON(bundle))) as BundleJson
}

/** What a caller knows when it verifies a package. */
export interface PackageCheck {
  trust: TrustRoot
  /** The package: its file name and sha256. */
  file: PackageSum
  /** The SHA256SUMS text found beside the packages, when there is one: it must be the signed one. */
  sumsText?: string
}

/** A verified package. */
export interface VerifiedPackage {
  ok: true
  statement: PackageStatement
  /** keyid of the operator key that signed it. */
  keyid: string
}

/** Whether a bundle's (unverified) payload is a package statement: how `llmesh verify` picks its check. */
export function isPackageBundle(bundleJson: unknown): boolean {
  const env = (bundleJson as { dsseEnvelope?: { payload?: unknown } } | null)?.dsseEnvelope
  if (typeof env?.payload !== 'string' || env.payload.length > 4 * MAX_PACKAGE_SUMS_BYTES) return false
  try {
    const st = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { predicateType?: unknown }
    return st?.predicateType === PREDICATE_TYPE_PACKAGE
  } catch {
    return false
  }
}

/** Verifies a package against its signed SHA256SUMS bundle and the trust root. Never throws. */
export function verifyPackage(
  bundleJson: unknown,
  check: PackageCheck,
): VerifiedPackage | { ok: false; error: VerificationError } {
  const fail = (code: VerificationError['code'], msg: string) => ({
    ok: false as const,
    error: new VerificationError(code, msg),
  })
  const opened = openOperatorBundle(bundleJson, check.trust.keys)
  if (!opened.ok) return opened
  if (opened.payloadType !== PAYLOAD_TYPE_IN_TOTO) return fail('ERR_SCHEMA', 'not an in-toto statement')
  const json = parseJsonBytes(opened.payload, MAX_PACKAGE_SIGNATURE_BYTES)
  if (!json.ok) return json
  if (!isCanonicalJsonBytes(opened.payload, json.value)) return fail('ERR_SCHEMA', 'statement is not canonical JSON')
  const parsed = PackageStatement.safeParse(json.value)
  if (!parsed.success) return fail('ERR_SCHEMA', `not a package statement: ${parsed.error.issues[0]?.message}`)
  const st = parsed.data
  if (st.predicate.fleet !== check.trust.fleet)
    return fail('ERR_WRONG_FLEET', `signed for fleet ${st.predicate.fleet}, not ${check.trust.fleet}`)
  if (check.sumsText !== undefined && sha256Hex(check.sumsText) !== st.predicate.sums_sha256)
    return fail('ERR_DIGEST_MISMATCH', 'SHA256SUMS is not the signed one (altered after signing)')
  const subject = st.subject.find((s) => s.name === check.file.name)
  if (subject === undefined) return fail('ERR_DIGEST_MISMATCH', `${check.file.name} is not among the signed packages`)
  if (subject.digest.sha256 !== check.file.sha256)
    return fail(
      'ERR_DIGEST_MISMATCH',
      `${check.file.name} has sha256 ${check.file.sha256}, the signature says ${subject.digest.sha256}`,
    )
  return { ok: true, statement: st, keyid: opened.keyid }
}
