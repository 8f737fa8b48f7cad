/**
 * `llmesh release get <model@version> [--bundle <file>] [--manifest <file>]`: fetches a release's
 * signed Sigstore bundle (`GET /releases/:model/:version/bundle`, the exact signed bytes the mesh
 * carries) and its manifest from the seed, and writes them so that
 * `llmesh verify <gguf> --bundle <file> --fleet <dir>` can check the file offline, anywhere.
 * With neither option, prints the bundle to stdout.
 */
import { writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { ApiClient } from '../api-client.ts'
import { action, CliError, type OutputOptions, print, UsageError } from '../output.ts'

/** Options of `release get`. */
export interface ReleaseGetOptions extends OutputOptions {
  api?: string
  data?: string
  bundle?: string
  manifest?: string
}

/** Splits `model@version`. */
export function splitRef(ref: string): { model: string; version: string } {
  const at = ref.lastIndexOf('@')
  if (at <= 0 || at === ref.length - 1)
    throw new UsageError(`expected <model>@<version>, got ${ref}`, 'ERR_INVALID_INPUT')
  return { model: ref.slice(0, at), version: ref.slice(at + 1) }
}

/** Fetches the bundle and manifest and writes them. */
export async function releaseGet(ref: string, opts: ReleaseGetOptions): Promise<void> {
  const { model, version } = splitRef(ref)
  const client = await ApiClient.connect(opts)
  const { manifest, digest } = await client.release(model, version)
  const bytes = await client.releaseBundle(model, version)
  // zod and the signing code load only here
  const { wireMessageId } = await import('../../protocols/signing/message-id.ts')
  const { WireEnvelope } = await import('../../protocols/wire.ts')
  // the bytes must be the message the node listed: same message id, a release envelope
  if (wireMessageId(bytes) !== digest)
    throw new CliError('the bundle does not match the release digest', 'ERR_DIGEST_MISMATCH')
  const env = WireEnvelope.safeParse(JSON.parse(Buffer.from(bytes).toString('utf8')))
  if (!env.success || env.data.kind !== 'operator' || env.data.type !== 'ReleaseManifest')
    throw new CliError('the node sent something that is not a signed release', 'ERR_SCHEMA')
  const bundleText = `${JSON.stringify(env.data.bundle, null, 2)}\n`
  if (opts.bundle !== undefined) await writeFile(opts.bundle, bundleText)
  if (opts.manifest !== undefined) await writeFile(opts.manifest, `${JSON.stringify(manifest, null, 2)}\n`)
  if (opts.bundle === undefined && opts.manifest === undefined) {
    process.stdout.write(bundleText)
    return
  }
  print(opts, { model, version, seq: manifest.seq, digest, bundle: opts.bundle, manifest: opts.manifest }, (o) =>
    [
      `${o.model}@${o.version} (seq ${o.seq}, digest ${o.digest})`,
      ...(o.bundle ? [`  bundle    ${o.bundle}`] : []),
      ...(o.manifest ? [`  manifest  ${o.manifest}`] : []),
      ...(o.bundle ? [`  check a file with: llmesh verify <file.gguf> --bundle ${o.bundle} --fleet <fleet dir>`] : []),
    ].join('\n'),
  )
}

/** Registers `release get` under the `release` command. */
export function registerReleaseGet(release: Command, api: (c: Command) => Command): void {
  api(
    release
      .command('get <model@version>')
      .description("write a release's signed Sigstore bundle and manifest (for llmesh verify, offline)")
      .option('--bundle <file>', 'write the signed Sigstore bundle here')
      .option('--manifest <file>', 'write the manifest (JSON) here'),
  ).action(action(releaseGet))
}
