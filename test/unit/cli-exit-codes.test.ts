/**
 * `llmesh` exit codes and `--json` error bodies, one per error class (cli/output.ts): usage 2,
 * unreachable 3 (naming the cause), refused by the daemon 4 (the daemon's code), failed 1; and
 * stdout under `--json` is one JSON document. The refusals come from a real HTTP server that
 * answers with the node's error contract (node/api/errors.ts).
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import Fastify from 'fastify'
import { installErrorHandlers, sendError } from '../../node/api/errors.ts'
import { silentLogger } from '../../node/logger.ts'
import { cli, tmpDir } from '../helpers/index.ts'

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok))
  const addr = srv.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  await new Promise((ok) => srv.close(ok))
  return port
}

function errorBody(stdout: string): { code: string; message: string; class: string } {
  const doc = JSON.parse(stdout) as { error: { code: string; message: string; class: string } }
  assert.deepEqual(Object.keys(doc), ['error'])
  return doc.error
}

test('usage: a missing required option or a malformed argument exits 2', async () => {
  const missing = await cli(['release', 'publish', 'x.gguf'])
  assert.equal(missing.code, 2, missing.stderr)
  assert.match(missing.stderr, /required option '--model <name>' not specified/)
  const json = await cli(['release', 'publish', 'x.gguf', '--json'])
  assert.equal(json.code, 2)
  assert.deepEqual(errorBody(json.stdout), {
    code: 'ERR_USAGE',
    message: "required option '--model <name>' not specified",
    class: 'usage',
  })
  // a malformed release reference: refused before any daemon is called (the port is closed)
  const ref = await cli(['rollout', 'status', 'tiny', '--api', `127.0.0.1:${await closedPort()}`, '--json'])
  assert.equal(ref.code, 2, ref.stderr)
  assert.equal(errorBody(ref.stdout).class, 'usage')
  assert.equal((await cli(['no-such-command'])).code, 2)
})

test('unreachable: a refused connection names its cause and exits 3; no node.json too', async (t) => {
  const port = await closedPort()
  const r = await cli(['status', '--api', `127.0.0.1:${port}`])
  assert.equal(r.code, 3, r.stderr)
  assert.equal(
    r.stderr.trim(),
    `llmesh: error: ECONNREFUSED 127.0.0.1:${port}: is the node running? see llmesh node start [ERR_UNREACHABLE]`,
  )
  const json = await cli(['device', 'list', '--api', `127.0.0.1:${port}`, '--json'])
  assert.equal(json.code, 3)
  assert.deepEqual(errorBody(json.stdout), {
    code: 'ERR_UNREACHABLE',
    message: `ECONNREFUSED 127.0.0.1:${port}: is the node running? see llmesh node start`,
    class: 'unreachable',
  })
  const empty = await tmpDir(t)
  const none = await cli(['status', '--data', empty, '--json'])
  assert.equal(none.code, 3)
  assert.equal(errorBody(none.stdout).code, 'ERR_NOT_RUNNING')
})

test('refused: the daemon’s error code and message, exit 4, also for a route the node lacks', async (t) => {
  const app = Fastify()
  installErrorHandlers(app, silentLogger())
  app.get('/releases/:model/:version', async (_req, reply) => sendError(reply, 'ERR_NOT_FOUND', 'no release x@1.0.0'))
  app.get('/status', async (_req, reply) => sendError(reply, 'ERR_DISK_FULL', 'disk full'))
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => app.close())
  const addr = app.server.address()
  const api = `127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`

  const show = await cli(['release', 'show', 'x@1.0.0', '--api', api, '--json'])
  assert.equal(show.code, 4, show.stderr)
  assert.deepEqual(errorBody(show.stdout), { code: 'ERR_NOT_FOUND', message: 'no release x@1.0.0', class: 'refused' })
  assert.equal(show.stderr, 'llmesh: error: no release x@1.0.0 [ERR_NOT_FOUND]\n')
  // a device has no /rollout/commands: ERR_NO_ROUTE from the node's not-found handler
  const cmd = await cli(['rollout', 'pause', 'tiny@1.0.0', '--api', api])
  assert.equal(cmd.code, 4, cmd.stderr)
  assert.match(cmd.stderr, /ERR_NO_ROUTE/)
  // a 5xx is still an answer from the daemon: refused, with its code
  const full = await cli(['status', '--api', api, '--json'])
  assert.equal(full.code, 4)
  assert.equal(errorBody(full.stdout).code, 'ERR_DISK_FULL')
})

test('failed: a local failure exits 1; --json prints the report, not a second document', async (t) => {
  const dir = await tmpDir(t)
  const file = join(dir, 'not.gguf')
  await writeFile(file, 'definitely not a gguf file')
  const r = await cli(['model', 'inspect', file, '--json'])
  assert.equal(r.code, 1, r.stderr)
  const report = JSON.parse(r.stdout) as { ok: boolean; error?: unknown }
  assert.equal(report.ok, false)
  assert.equal(report.error, undefined)
  const v = await cli(['verify', file, '--bundle', join(dir, 'missing.json'), '--fleet', dir, '--json'])
  assert.equal(v.code, 1, v.stderr)
  assert.equal(errorBody(v.stdout).class, 'failed')
})
