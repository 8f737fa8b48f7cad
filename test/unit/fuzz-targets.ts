/**
 * The decoders and verifiers fuzzed by test/unit/decoders-fuzz.test.ts (≥ 1,000 runs each in
 * `npm test`) and bench/fuzz.ts (≥ 10,000 each): each target takes bytes and answers `ok` or
 * `refused` (a typed error); anything else it throws is a crash. Inputs are mutants of a valid
 * seed (byte flips, truncation, insertion) and arbitrary bytes.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import type { z } from 'zod'
import { GgufError } from '../../node/model/errors.ts'
import { readGgufInfo } from '../../node/model/gguf.ts'
import { CountFrame, decodeFrame, HaveFrame, WantFrame } from '../../protocols/anti-entropy.ts'
import { canonicalBytes, sha256Hex } from '../../protocols/encoding.ts'
import { VerificationError } from '../../protocols/errors.ts'
import {
  applyRootRotation,
  createOperatorSigner,
  DeviceEnrollment,
  generateOperatorKey,
  HealthReport,
  nextTrustRoot,
  OperatorCommand,
  ReleaseManifest,
  Revocation,
  signTrustRoot,
  TrustRoot,
  Verdict,
} from '../../protocols/index.ts'
import { Initiator, ReconcileSet, reconcileKey, respond } from '../../protocols/reconcile.ts'
import { NextFrame, QueryFrame, ReplyFrame } from '../../protocols/reconcile-frames.ts'
import { makeTinyGgufBuffer } from '../fixtures/gguf-writer.ts'
import {
  exampleCommand,
  exampleEnrollment,
  exampleHealthReport,
  exampleRelease,
  exampleRevocation,
  exampleTrustRoot,
  exampleVerdict,
  NOW,
} from '../fixtures/messages.ts'

/** What a target says of one input. */
export type Verdict_ = 'ok' | 'refused'

/** One fuzzed decoder. */
export interface FuzzTarget {
  name: string
  /** A valid input the mutants start from. */
  seed: Uint8Array
  run(bytes: Uint8Array): Verdict_ | Promise<Verdict_>
  /** Cleans up (temp files). */
  close?(): Promise<void>
}

/** Bytes a mutant of `seed` may be: flips, a cut, an insertion; or any bytes. */
export function mutants(seed: Uint8Array): fc.Arbitrary<Uint8Array> {
  const flips = fc.array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 })), {
    minLength: 1,
    maxLength: 4,
  })
  const mutated = fc
    .tuple(flips, fc.option(fc.nat(seed.length)), fc.option(fc.uint8Array({ maxLength: 8 })))
    .map(([fl, cut, ins]) => {
      const b = seed.slice()
      for (const [at, v] of fl) b[at] = v
      const cutAt = cut ?? b.length
      const head = b.subarray(0, cutAt)
      return ins === null ? head : new Uint8Array([...head, ...ins, ...b.subarray(cutAt)])
    })
  return fc.oneof({ weight: 4, arbitrary: mutated }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 1024 }) })
}

const typed = (ok: boolean, err?: unknown): Verdict_ => {
  if (ok) return 'ok'
  if (err instanceof VerificationError) return 'refused'
  throw err
}

/** A zod schema over JSON bytes: parse errors and schema errors are refusals. */
function schemaTarget(name: string, schema: { safeParse(v: unknown): { success: boolean } }, seed: unknown) {
  const dec = new TextDecoder('utf-8', { fatal: true })
  return {
    name: `schema ${name}`,
    seed: canonicalBytes(seed),
    run(bytes: Uint8Array): Verdict_ {
      let v: unknown
      try {
        v = JSON.parse(dec.decode(bytes))
      } catch (e) {
        if (e instanceof SyntaxError || e instanceof TypeError) return 'refused'
        throw e
      }
      return schema.safeParse(v).success ? 'ok' : 'refused'
    },
  }
}

/** Every target. */
export async function fuzzTargets(): Promise<FuzzTarget[]> {
  const op = generateOperatorKey()
  const neu = generateOperatorKey()
  const v1: TrustRoot = exampleTrustRoot({ keys: [op.key] })
  const v2 = nextTrustRoot(v1, [neu.key], NOW)
  const rotation = await signTrustRoot(v2, [
    createOperatorSigner(op.privateKeyPem),
    createOperatorSigner(neu.privateKeyPem),
  ])
  const gguf = Buffer.from(makeTinyGgufBuffer({ layers: 1, embd: 16 }))
  // a memory filesystem when there is one: the GGUF reader takes a path
  const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'llmesh-fuzz-'))
  await writeFile(join(dir, 'seed.gguf'), gguf)
  // the header alone (metadata and tensor infos, up to the data offset) is what the reader checks
  const header = gguf.subarray(0, (await readGgufInfo(join(dir, 'seed.gguf'))).dataOffset)
  let n = 0
  // decoded frames are also fed to the reconciliation logic: it must take any frame that decodes
  const frame = <T>(name: string, schema: z.ZodType<T>, seed: unknown, use: (v: T) => void = () => {}) => ({
    name: `anti-entropy ${name}`,
    seed: canonicalBytes(seed),
    run: (b: Uint8Array): Verdict_ => {
      const r = decodeFrame(b, schema)
      if (!r.ok) return typed(false, r.error)
      use(r.value)
      return 'ok'
    },
  })
  const ids = Array.from({ length: 300 }, (_, k) => sha256Hex(String(k)))
  const set = new ReconcileSet(ids.map((id, k) => ({ key: reconcileKey(k % 8, k % 3, id), id })))
  const fp = set.fingerprint(0, 100)
  return [
    schemaTarget('HealthReport', HealthReport, exampleHealthReport()),
    schemaTarget('Verdict', Verdict, exampleVerdict()),
    schemaTarget('ReleaseManifest', ReleaseManifest, exampleRelease()),
    schemaTarget('OperatorCommand', OperatorCommand, exampleCommand()),
    schemaTarget('DeviceEnrollment', DeviceEnrollment, exampleEnrollment()),
    schemaTarget('Revocation', Revocation, exampleRevocation()),
    schemaTarget('TrustRoot', TrustRoot, v1),
    {
      name: 'trust-root rotation',
      seed: rotation[0],
      run: (b) => {
        const r = applyRootRotation(v1, [b, ...rotation.slice(1)], NOW)
        return r.ok ? 'ok' : typed(false, r.error)
      },
    },
    frame('have', HaveFrame, { have: ['a'.repeat(64)] }),
    frame('want', WantFrame, { want: ['b'.repeat(64)], count: 2 }),
    frame('count', CountFrame, { count: 1 }),
    frame('query', QueryFrame, { ranges: [{ b: '3', f: fp }, { b: '5' }, { i: ids.slice(0, 3) }] }, (v) =>
      respond(set, v.ranges),
    ),
    frame(
      'reply',
      ReplyFrame,
      {
        ranges: [
          { b: '3', f: fp },
          { b: '4', i: [ids[1]] },
          { g: [ids[2]], m: [] },
        ],
      },
      (v) => {
        const ini = new Initiator(set, 2000)
        ini.first()
        ini.next(v.ranges)
      },
    ),
    frame('offer', NextFrame, { want: [ids[0]], offer: [ids[1]] }),
    {
      name: 'GGUF header',
      seed: header,
      async run(b) {
        const p = join(dir, `f${n++ % 4}.gguf`)
        await writeFile(p, b)
        try {
          await readGgufInfo(p)
          return 'ok'
        } catch (e) {
          if (e instanceof GgufError) return 'refused'
          throw e
        }
      },
      close: () => rm(dir, { recursive: true, force: true }),
    },
  ]
}
