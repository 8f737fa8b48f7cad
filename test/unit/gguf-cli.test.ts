import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { makeTinyGgufBuffer } from '../fixtures/gguf-writer.ts'
import { cli, suiteTmpDir } from '../helpers/index.ts'

const dir = suiteTmpDir('llmesh-model-cli-')
describe('llmesh model', () => {
  test('make-tiny writes the same bytes as the fixture writer and reports them', async () => {
    const out = join(dir, 'v2.gguf')
    const r = await cli(['model', 'make-tiny', out, '--layers', '3', '--seed', '5', '--perturb-layer', '1', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const data = JSON.parse(r.stdout)
    const expected = makeTinyGgufBuffer({ layers: 3, seed: 5, perturbLayer: 1 })
    const written = await readFile(out)
    assert.ok(written.equals(expected))
    assert.equal(data.bytes, expected.length)
    assert.equal(data.sha256, createHash('sha256').update(expected).digest('hex'))
  })

  test('inspect --json describes a good file', async () => {
    const p = join(dir, 'good.gguf')
    await writeFile(p, makeTinyGgufBuffer())
    const r = await cli(['model', 'inspect', p, '--json'])
    assert.equal(r.code, 0, r.stderr)
    const rep = JSON.parse(r.stdout)
    assert.equal(rep.ok, true)
    assert.equal(rep.architecture, 'llama')
    assert.equal(rep.quantization, 'F32')
    assert.equal(rep.tensor_count, 21)
    assert.equal(rep.metadata['tokenizer.ggml.tokens'].length, 260)
  })

  test('inspect of a file missing head_count: problems on stdout, one error line, exit 1', async () => {
    const p = join(dir, 'nohead.gguf')
    await writeFile(p, makeTinyGgufBuffer({ omitKey: 'llama.attention.head_count' }))
    const r = await cli(['model', 'inspect', p, '--json'])
    assert.equal(r.code, 1)
    assert.equal(JSON.parse(r.stdout).problems[0].code, 'ERR_GGUF_MISSING_KEY')
    assert.equal(r.stderr.trim().split('\n').length, 1)
    assert.match(r.stderr, /ERR_GGUF_MISSING_KEY/)
  })

  test('errors: missing file, bad argument, layer out of range', async () => {
    const missing = await cli(['model', 'inspect', join(dir, 'nope.gguf')])
    assert.notEqual(missing.code, 0)
    assert.equal(missing.stdout, '')
    assert.match(missing.stderr, /ERR_GGUF_IO/)
    const badArg = await cli(['model', 'make-tiny', join(dir, 'x.gguf'), '--layers', 'x'])
    assert.notEqual(badArg.code, 0)
    assert.match(badArg.stderr, /--layers/)
    const range = await cli(['model', 'make-tiny', join(dir, 'y.gguf'), '--perturb-layer', '7'])
    assert.notEqual(range.code, 0)
    assert.equal(range.stderr.trim().split('\n').length, 1)
  })
})
