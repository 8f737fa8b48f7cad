/**
 * A message log written by an older node (records named by wire hash, high-S or keyid-less operator
 * envelopes, two encodings of one message) loads as one message per id, in the accepted form.
 */
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { silentLogger } from '../../node/logger.ts'
import { MessageStore } from '../../node/mesh/message-store.ts'
import {
  canonicalBytes,
  createOperatorSigner,
  fromBase64,
  parseEcdsaDer,
  sha256Hex,
  signOperatorMessage,
  toBase64,
  verifyEnvelope,
  wireMessageId,
} from '../../protocols/index.ts'
import { exampleCommand, exampleOperator, NOW } from '../fixtures/messages.ts'
import { tmpDir } from '../helpers/index.ts'

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n

function highS(der: Uint8Array): Uint8Array {
  const rs = parseEcdsaDer(der)
  assert.ok(rs)
  const int = (v: bigint) => {
    let h = v.toString(16)
    if (h.length % 2) h = `0${h}`
    let b = Buffer.from(h, 'hex')
    if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b])
    return Buffer.concat([Buffer.from([2, b.length]), b])
  }
  const r = int(rs.r)
  const s = int(P256_N - rs.s)
  return Buffer.concat([Buffer.from([0x30, r.length + s.length]), r, s])
}

test('an older node’s log loads as one message per id, in the accepted form', async (t) => {
  const dir = await tmpDir(t, 'llmesh-log-')
  const { op, root } = exampleOperator()
  const signer = createOperatorSigner(op.privateKeyPem)
  const msg = exampleCommand()
  const wire = await signOperatorMessage(msg, signer)
  const env = JSON.parse(Buffer.from(wire).toString('utf8'))
  const sig = env.bundle.dsseEnvelope.signatures[0]
  sig.sig = toBase64(highS(fromBase64(sig.sig)))
  sig.keyid = ''
  const legacy = canonicalBytes(env)
  assert.equal(verifyEnvelope(legacy, { trust: root, now: NOW }).ok, false, 'refused as it is')
  const line = (bytes: Uint8Array) =>
    `${JSON.stringify({ d: sha256Hex(bytes), t: NOW, s: op.keyid, m: msg, w: toBase64(bytes) })}\n`
  await writeFile(join(dir, 'messages.jsonl'), `${line(legacy)}${line(wire)}not json\n`)
  const store = new MessageStore({ logger: silentLogger(), now: () => NOW }, { dataDir: dir })
  await store.load()
  assert.equal(store.size, 1)
  const [m] = store.list('OperatorCommand')
  assert.equal(m.digest, wireMessageId(wire))
  const r = verifyEnvelope(m.bytes, { trust: root, now: NOW })
  assert.ok(r.ok, 'the stored bytes verify under the strict rules')
  assert.equal(r.digest, m.digest)
  const lines = (await readFile(join(dir, 'messages.jsonl'), 'utf8')).trim().split('\n')
  assert.equal(lines.length, 1)
  assert.equal(JSON.parse(lines[0]).d, m.digest)
})
