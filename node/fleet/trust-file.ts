/**
 * `trust-root.json`: the public part of a fleet. It holds the current TrustRoot and the signed
 * wire envelopes of every root version since v1 (`chain[0]` = v1, self-signed; `chain[i]` =
 * v(i+1), signed by the keys of v(i) and its own), base64-encoded. A device that trusts v(k)
 * applies `chain.slice(k)` with `applyRootChain`; a reader of the file verifies the whole chain.
 */
import { readFile } from 'node:fs/promises'
import * as z from 'zod'
import { canonicalJson, fromBase64, toBase64 } from '../../protocols/encoding.ts'
import type { VerificationError } from '../../protocols/errors.ts'
import { TrustRoot } from '../../protocols/schemas/index.ts'
import { normalizeOperatorWire } from '../../protocols/signing/normalize.ts'
import { applyRootChain, verifyRootSelfSigned } from '../../protocols/trust/rotation.ts'
import { FleetError } from './errors.ts'

/** JSON form of `trust-root.json`. */
export const TrustFile = z.object({
  root: TrustRoot,
  chain: z.array(z.array(z.string()).min(1)).min(1),
})
export type TrustFile = z.infer<typeof TrustFile>

/** Builds the file content from the root and its chain of signed envelopes. */
export function trustFileJson(root: TrustRoot, chain: Uint8Array[][]): string {
  const file: TrustFile = { root, chain: chain.map((step) => step.map(toBase64)) }
  return `${JSON.stringify(file, null, 2)}\n`
}

/** The signed chain of a parsed trust file, as wire bytes. */
export function chainOf(file: TrustFile): Uint8Array[][] {
  // chains written by an older llmesh may hold high-S signatures: rewrite them to the accepted form
  return file.chain.map((step) => step.map((b) => normalizeOperatorWire(fromBase64(b))))
}

/**
 * Verifies a trust file's chain end to end at `now` and that it ends at `file.root`.
 * Returns the verified root or throws FleetError.
 */
export function verifyTrustFile(file: TrustFile, now: number): TrustRoot {
  const chain = chainOf(file)
  const first = verifyRootSelfSigned(chain[0], now, chain.length === 1)
  if (!first.ok) throw badChain(first.error)
  if (first.root.version !== 1) throw new FleetError('ERR_FLEET_INVALID', 'trust root chain must start at version 1')
  const last = applyRootChain(first.root, chain.slice(1), now)
  if (!last.ok) throw badChain(last.error)
  if (canonicalJson(last.root) !== canonicalJson(file.root)) {
    throw new FleetError('ERR_FLEET_INVALID', 'trust root does not match its signed chain')
  }
  return last.root
}

function badChain(err: VerificationError): FleetError {
  return new FleetError('ERR_FLEET_INVALID', `trust root chain refused: ${err.message} [${err.code}]`)
}

/** Reads and parses `trust-root.json` (not yet verified). */
export async function readTrustFile(path: string): Promise<TrustFile> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new FleetError('ERR_FLEET_MISSING', `cannot read ${path}: ${(err as Error).message}`, { cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new FleetError('ERR_FLEET_INVALID', `${path} is not JSON`, { cause: err })
  }
  const parsed = TrustFile.safeParse(json)
  if (!parsed.success) {
    throw new FleetError('ERR_FLEET_INVALID', `${path} is not a trust root file: ${parsed.error.issues[0]?.message}`)
  }
  return parsed.data
}

/** Reads and verifies a `trust-root.json` at `now` (all a verifier needs; no swarm or operator key). */
export async function loadTrustRoot(path: string, now: number): Promise<TrustRoot> {
  return verifyTrustFile(await readTrustFile(path), now)
}
