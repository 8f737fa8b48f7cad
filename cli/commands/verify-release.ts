/**
 * Offline verification of a release file against its signed manifest (a wire envelope or a raw
 * Sigstore bundle) and the fleet's trust root; imported only by `llmesh verify` (sigstore, zod).
 */
import { readFile, stat } from 'node:fs/promises'
import { sha256File } from '../../node/fleet/index.ts'
import { canonicalBytes } from '../../protocols/encoding.ts'
import { VerificationError } from '../../protocols/errors.ts'
import type { ReleaseManifest, TrustRoot } from '../../protocols/schemas/index.ts'
import { operatorEnvelopeBytes } from '../../protocols/signing/operator.ts'
import { verifyArtifact, verifyEnvelope } from '../../protocols/verify.ts'
import { CliError } from '../output.ts'

/** What `verify --json` prints on success. */
export interface VerifyReport {
  ok: true
  file: string
  model: string
  version: string
  seq: number
  sha256: string
  size: number
  signer: string
  expires_at: number
}

/** Wire bytes of a bundle file: a wire envelope (`kind`) or a raw Sigstore bundle (`mediaType`). */
export function wireFromBundleFile(text: string): Uint8Array {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new VerificationError('ERR_SCHEMA', 'bundle file is not JSON')
  }
  if (typeof json === 'object' && json !== null && 'kind' in json) return canonicalBytes(json)
  if (typeof json === 'object' && json !== null && 'mediaType' in json) {
    return operatorEnvelopeBytes('ReleaseManifest', json as Record<string, unknown>)
  }
  throw new VerificationError('ERR_SCHEMA', 'bundle file is neither a wire envelope nor a Sigstore bundle')
}

/** Verifies a release file against the (verified) trust root; throws VerificationError (or FleetError) with the reason. */
export async function verifyReleaseFile(
  file: string,
  bundlePath: string,
  trust: TrustRoot,
  now = Date.now(),
): Promise<VerifyReport> {
  let text: string
  try {
    text = await readFile(bundlePath, 'utf8')
  } catch (err) {
    throw new CliError(`cannot read bundle ${bundlePath}: ${(err as Error).message}`, 'ERR_INVALID_INPUT')
  }
  const res = verifyEnvelope(wireFromBundleFile(text), { trust, now })
  if (!res.ok) throw res.error
  if (res.message.type !== 'ReleaseManifest')
    throw new VerificationError('ERR_UNKNOWN_TYPE', `bundle holds a ${res.message.type}, not a release`)
  const manifest: ReleaseManifest = res.message
  try {
    await stat(file)
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, 'ERR_INVALID_INPUT')
  }
  const { sha256, size } = await sha256File(file)
  const art = verifyArtifact(sha256, manifest)
  if (!art.ok) throw art.error
  if (size !== manifest.file.size) {
    throw new VerificationError('ERR_DIGEST_MISMATCH', `file is ${size} bytes, the release says ${manifest.file.size}`)
  }
  return {
    ok: true,
    file,
    model: manifest.model,
    version: manifest.version,
    seq: manifest.seq,
    sha256,
    size,
    signer: res.signer,
    expires_at: manifest.expires_at,
  }
}
