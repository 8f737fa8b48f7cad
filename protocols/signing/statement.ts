/**
 * The in-toto statement a release is signed as: subject = the GGUF file (name and sha256),
 * predicate = the ReleaseManifest. The Sigstore verifier checks the DSSE signature only; the
 * subject digest is checked against the manifest here and against the file by `verifyArtifact`.
 */
import * as z from 'zod'
import { IN_TOTO_STATEMENT_TYPE, PREDICATE_TYPE_RELEASE } from '../constants.ts'
import { type ReleaseManifest, Sha256Hex } from '../schemas/index.ts'

/** in-toto Statement v1 with exactly one subject, the release file. */
export const ReleaseStatement = z.object({
  _type: z.literal(IN_TOTO_STATEMENT_TYPE),
  subject: z.array(z.object({ name: z.string().min(1).max(256), digest: z.object({ sha256: Sha256Hex }) })).length(1),
  predicateType: z.literal(PREDICATE_TYPE_RELEASE),
  predicate: z.unknown(),
})
export type ReleaseStatement = z.infer<typeof ReleaseStatement>

/** The subject name of a release file: `<model>-<version>.gguf`. */
export function releaseFileName(m: Pick<ReleaseManifest, 'model' | 'version'>): string {
  return `${m.model}-${m.version}.gguf`
}

/** Wraps a manifest in its in-toto statement (subject digest = `manifest.file.sha256`). */
export function releaseStatement(manifest: ReleaseManifest): ReleaseStatement {
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    subject: [{ name: releaseFileName(manifest), digest: { sha256: manifest.file.sha256 } }],
    predicateType: PREDICATE_TYPE_RELEASE,
    predicate: manifest,
  }
}
