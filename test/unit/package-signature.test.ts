/**
 * Package signatures (protocols/signing/package.ts, cli/commands/package-run.ts): the operator key
 * signs a SHA256SUMS and `llmesh verify` checks a package against it and the trust root, offline.
 * Tiny fake tarballs stand in for packages (the signature covers bytes, not their meaning); every
 * refusal is typed: a flipped byte in the tarball, in SHA256SUMS, in the signature; another fleet.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { signPackageDir, verifyPackageFile } from '../../cli/commands/package-run.ts'
import { initFleet, TRUST_ROOT_FILE } from '../../node/fleet/index.ts'
import { writeSums } from '../../packaging/build.ts'
import { PACKAGE_SIGNATURE_FILE, PACKAGE_SUMS_FILE } from '../../protocols/constants.ts'
import { canonicalBytes } from '../../protocols/encoding.ts'
import { VerificationError } from '../../protocols/errors.ts'
import {
  isPackageBundle,
  packageStatement,
  parsePackageSums,
  signOperatorBundle,
  verifyPackage,
} from '../../protocols/signing/index.ts'
import { exampleRelease } from '../fixtures/messages.ts'
import { cli, suiteTmpDir } from '../helpers/index.ts'

const VERSION = '9.8.7'
const X64 = `llmesh-${VERSION}-linux-x64.tar.gz`
const ARM = `llmesh-${VERSION}-linux-arm64.tar.gz`

/** Rejects with a VerificationError of `code`. */
async function refused(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof VerificationError, `not a VerificationError: ${err}`)
    assert.equal(err.code, code, err.message)
    return true
  })
}

describe('package signatures', () => {
  const dir = suiteTmpDir('llmesh-pkgsig-')
  const fleetDir = join(dir, 'fleet')
  const dist = join(dir, 'dist')
  /** A copy of dist/ a test may damage. */
  const copyDist = async (name: string): Promise<string> => {
    const d = join(dir, name)
    await mkdir(d)
    for (const f of [X64, ARM, PACKAGE_SUMS_FILE, PACKAGE_SIGNATURE_FILE]) await copyFile(join(dist, f), join(d, f))
    return d
  }
  before(async () => {
    await initFleet(fleetDir, { fleetId: 'pkg-fleet' })
    await mkdir(dist)
    await writeFile(join(dist, X64), Buffer.from('fake x64 tarball \x1f\x8b'))
    await writeFile(join(dist, ARM), Buffer.from('fake arm64 tarball'))
    writeSums(dist, VERSION)
  })

  test('llmesh package sign, then verify each package with --fleet and with --trust-root', async () => {
    const s = await cli(['package', 'sign', dist, '--fleet', fleetDir, '--json'])
    assert.equal(s.code, 0, s.stderr)
    const signed = JSON.parse(s.stdout) as { packages: string[]; fleet: string; signature: string }
    assert.deepEqual(signed.packages, [ARM, X64])
    assert.equal(signed.fleet, 'pkg-fleet')
    assert.equal(signed.signature, join(dist, PACKAGE_SIGNATURE_FILE))
    for (const [f, trust] of [
      [X64, ['--fleet', fleetDir]],
      [ARM, ['--trust-root', join(fleetDir, TRUST_ROOT_FILE)]],
    ] as const) {
      const v = await cli(['verify', join(dist, f), ...trust, '--json'])
      assert.equal(v.code, 0, v.stderr)
      const r = JSON.parse(v.stdout) as { package: string; fleet: string; sums_checked: boolean }
      assert.equal(r.package, f)
      assert.equal(r.fleet, 'pkg-fleet')
      assert.equal(r.sums_checked, true)
    }
    const human = await cli(['verify', join(dist, X64), '--fleet', fleetDir])
    assert.match(human.stdout, new RegExp(`^OK package ${X64.replaceAll('.', '\\.')} of fleet pkg-fleet`))
  })

  test('a flipped byte in the tarball is ERR_DIGEST_MISMATCH (CLI: exit 1, the code on stderr)', async () => {
    const d = await copyDist('tampered-tarball')
    const buf = await readFile(join(d, X64))
    buf[3] ^= 0x01
    await writeFile(join(d, X64), buf)
    await refused(verifyPackageFile(join(d, X64), { fleet: fleetDir }), 'ERR_DIGEST_MISMATCH')
    const v = await cli(['verify', join(d, X64), '--fleet', fleetDir])
    assert.equal(v.code, 1)
    assert.match(v.stderr, /\[ERR_DIGEST_MISMATCH\]\n$/)
    // the other package of the same signature still verifies
    assert.equal((await verifyPackageFile(join(d, ARM), { fleet: fleetDir })).ok, true)
  })

  test('a SHA256SUMS altered to match a tampered tarball is refused; without SHA256SUMS the signed list decides', async () => {
    const d = await copyDist('tampered-sums')
    const buf = await readFile(join(d, X64))
    buf[0] ^= 0x01
    await writeFile(join(d, X64), buf)
    writeSums(d, VERSION) // the attacker rewrites SHA256SUMS to match (writeSums drops the stale signature)
    assert.ok(!existsSync(join(d, PACKAGE_SIGNATURE_FILE)), 'a rebuild removes the signature of the old SHA256SUMS')
    await copyFile(join(dist, PACKAGE_SIGNATURE_FILE), join(d, PACKAGE_SIGNATURE_FILE))
    await refused(verifyPackageFile(join(d, X64), { fleet: fleetDir }), 'ERR_DIGEST_MISMATCH')
    await refused(verifyPackageFile(join(d, ARM), { fleet: fleetDir }), 'ERR_DIGEST_MISMATCH')
    // a single flipped byte of a digest in SHA256SUMS, packages intact
    const d2 = await copyDist('flipped-sums')
    const sums = await readFile(join(d2, PACKAGE_SUMS_FILE), 'utf8')
    await writeFile(join(d2, PACKAGE_SUMS_FILE), sums[0] === 'a' ? `b${sums.slice(1)}` : `a${sums.slice(1)}`)
    await refused(verifyPackageFile(join(d2, ARM), { fleet: fleetDir }), 'ERR_DIGEST_MISMATCH')
    // the signature alone (SHA256SUMS lost) still names the digests
    const d3 = await copyDist('no-sums')
    await rm(join(d3, PACKAGE_SUMS_FILE))
    const r = await verifyPackageFile(join(d3, X64), { fleet: fleetDir })
    assert.equal(r.sums_checked, false)
    await refused(
      verifyPackageFile(join(d, X64), { fleet: fleetDir, bundle: join(d3, PACKAGE_SIGNATURE_FILE) }),
      'ERR_DIGEST_MISMATCH',
    )
  })

  test('a flipped byte of the signature or of the signed statement is ERR_BAD_SIGNATURE', async () => {
    const d = await copyDist('tampered-signature')
    const path = join(d, PACKAGE_SIGNATURE_FILE)
    const bundle = JSON.parse(await readFile(path, 'utf8'))
    const env = bundle.dsseEnvelope
    const sig = Buffer.from(env.signatures[0].sig, 'base64')
    sig[sig.length - 5] ^= 0x01
    await writeFile(
      path,
      JSON.stringify({
        ...bundle,
        dsseEnvelope: { ...env, signatures: [{ ...env.signatures[0], sig: sig.toString('base64') }] },
      }),
    )
    const r = await verifyPackageFile(join(d, X64), { fleet: fleetDir }).catch((e: unknown) => e)
    assert.ok(r instanceof VerificationError)
    // a flipped DER byte may break the encoding (schema) or the signature; both refuse, typed
    assert.ok(['ERR_BAD_SIGNATURE', 'ERR_SCHEMA'].includes(r.code), r.code)
    // the statement re-signed by nobody: a digest of the x64 package replaced in the payload
    const st = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'))
    st.subject[1].digest.sha256 = 'f'.repeat(64)
    const forged = { ...bundle, dsseEnvelope: { ...env, payload: Buffer.from(canonicalBytes(st)).toString('base64') } }
    await writeFile(path, JSON.stringify(forged))
    await refused(verifyPackageFile(join(d, X64), { fleet: fleetDir }), 'ERR_BAD_SIGNATURE')
    // and a raw byte flip anywhere in the file is refused too
    const text = Buffer.from(JSON.stringify(bundle))
    text[Math.floor(text.length / 2)] ^= 0x01
    await writeFile(path, text)
    const raw = await verifyPackageFile(join(d, X64), { fleet: fleetDir }).catch((e: unknown) => e)
    assert.ok(raw instanceof VerificationError, String(raw))
  })

  test('another fleet: its key is not trusted (ERR_UNKNOWN_SIGNER); the same key for another fleet id is ERR_WRONG_FLEET', async () => {
    const other = join(dir, 'other-fleet')
    await initFleet(other, { fleetId: 'other-fleet' })
    await refused(verifyPackageFile(join(dist, X64), { fleet: other }), 'ERR_UNKNOWN_SIGNER')
    const v = await cli(['verify', join(dist, X64), '--trust-root', join(other, TRUST_ROOT_FILE)])
    assert.equal(v.code, 1)
    assert.match(v.stderr, /\[ERR_UNKNOWN_SIGNER\]\n$/)
    // a signature made for another fleet id with a key this fleet trusts
    const fleet = await (await import('../../node/fleet/index.ts')).loadFleet(fleetDir)
    const sums = await readFile(join(dist, PACKAGE_SUMS_FILE), 'utf8')
    const { signPackageSums } = await import('../../protocols/signing/package.ts')
    const bundle = await signPackageSums(
      sums,
      'someone-else',
      fleet.operatorSigner as NonNullable<typeof fleet.operatorSigner>,
      Date.now(),
    )
    const res = verifyPackage(bundle, {
      trust: fleet.root,
      file: parsePackageSums(sums)[0] as { name: string; sha256: string },
      sumsText: sums,
    })
    assert.equal(res.ok, false)
    assert.equal(!res.ok && res.error.code, 'ERR_WRONG_FLEET')
  })

  test('a release bundle is no package signature, and a package signature is no release', async () => {
    const fleet = await (await import('../../node/fleet/index.ts')).loadFleet(fleetDir)
    const signer = fleet.operatorSigner as NonNullable<typeof fleet.operatorSigner>
    const release = await signOperatorBundle(exampleRelease({ fleet: 'pkg-fleet' }), signer)
    assert.equal(isPackageBundle(release), false)
    const sums = await readFile(join(dist, PACKAGE_SUMS_FILE), 'utf8')
    const res = verifyPackage(release, {
      trust: fleet.root,
      file: parsePackageSums(sums)[0] as { name: string; sha256: string },
    })
    assert.equal(!res.ok && res.error.code, 'ERR_SCHEMA')
    // a package signature handed to verify as a model's bundle runs the package check (and fails it)
    const pkgBundle = join(dist, PACKAGE_SIGNATURE_FILE)
    assert.equal(isPackageBundle(JSON.parse(await readFile(pkgBundle, 'utf8'))), true)
    const v = await cli(['verify', join(dist, PACKAGE_SUMS_FILE), '--bundle', pkgBundle, '--fleet', fleetDir])
    assert.equal(v.code, 1)
    assert.match(v.stderr, /not among the signed packages \[ERR_DIGEST_MISMATCH\]/)
  })

  test("the container image's OCI archive is signed and verified like a package (build-image.sh --save <dir>)", async () => {
    const images = join(dir, 'images')
    await mkdir(images)
    const oci = `llmesh-${VERSION}-oci.tar`
    await writeFile(join(images, oci), Buffer.from('fake OCI archive'))
    // what build-image.sh writes beside it: `sha256sum` of the archive alone
    const sha = createHash('sha256').update('fake OCI archive').digest('hex')
    await writeFile(join(images, PACKAGE_SUMS_FILE), `${sha}  ${oci}\n`)
    const s = await cli(['package', 'sign', images, '--fleet', fleetDir, '--json'])
    assert.equal(s.code, 0, s.stderr)
    assert.deepEqual((JSON.parse(s.stdout) as { packages: string[] }).packages, [oci])
    const v = await cli(['verify', join(images, oci), '--trust-root', join(fleetDir, TRUST_ROOT_FILE)])
    assert.equal(v.code, 0, v.stderr)
    assert.match(v.stdout, new RegExp(`^OK package ${oci.replaceAll('.', '\\.')} of fleet pkg-fleet`))
    await writeFile(join(images, oci), Buffer.from('fake OCI archivE'))
    await refused(verifyPackageFile(join(images, oci), { fleet: fleetDir }), 'ERR_DIGEST_MISMATCH')
  })

  test('SHA256SUMS is parsed strictly and bounded', () => {
    const h = 'a'.repeat(64)
    assert.deepEqual(parsePackageSums(`${h}  ${X64}\n`), [{ sha256: h, name: X64 }])
    for (const [text, code] of [
      ['', 'ERR_SCHEMA'],
      [`${h}  ${X64}`, 'ERR_SCHEMA'],
      [`${h} ${X64}\n`, 'ERR_SCHEMA'],
      [`${h}  ../etc/passwd\n`, 'ERR_SCHEMA'],
      [`${h.toUpperCase()}  ${X64}\n`, 'ERR_SCHEMA'],
      [`${h}  ${X64}\n${h}  ${X64}\n`, 'ERR_SCHEMA'],
      [`${h}  llmesh-1.0-oci.tar.gz\n`, 'ERR_SCHEMA'],
      [`${h}  other-1.0-oci.tar\n`, 'ERR_SCHEMA'],
      [`${h}  llmesh-1.0-linux-x64.tar\n`, 'ERR_SCHEMA'],
      [`${h}  ${X64}\n`.repeat(65), 'ERR_OVERSIZED'],
      ['x'.repeat(70_000), 'ERR_OVERSIZED'],
    ] as const) {
      assert.throws(
        () => parsePackageSums(text),
        (e: unknown) => e instanceof VerificationError && e.code === code,
        JSON.stringify(text.slice(0, 90)),
      )
    }
    const st = packageStatement(`${h}  ${X64}\n`, 'pkg-fleet', 5)
    assert.deepEqual(st.subject, [{ name: X64, digest: { sha256: h } }])
  })

  test('signing needs the operator key; verify needs exactly one trust source', async () => {
    const device = join(dir, 'device-copy')
    await mkdir(device)
    for (const f of [TRUST_ROOT_FILE, 'swarm.key']) await copyFile(join(fleetDir, f), join(device, f))
    await assert.rejects(signPackageDir(dist, device), /holds no operator key/)
    const both = await cli([
      'verify',
      join(dist, X64),
      '--fleet',
      fleetDir,
      '--trust-root',
      join(device, TRUST_ROOT_FILE),
    ])
    assert.equal(both.code, 2, both.stderr)
    const none = await cli(['verify', join(dist, X64)])
    assert.equal(none.code, 2, none.stderr)
    const model = await cli(['verify', join(dist, PACKAGE_SUMS_FILE), '--fleet', fleetDir])
    assert.equal(model.code, 2, model.stderr)
    assert.match(model.stderr, /--bundle is required for a model file/)
  })
})
