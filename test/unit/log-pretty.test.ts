/**
 * The `pretty` log format (node/log-pretty.ts) and the format choice of node/logger.ts: a JSON
 * line becomes one readable line (time, level, role/svc, message, key=value fields, an error's
 * stack indented); network text cannot split a line or drive the terminal; a process whose
 * stderr is not a terminal logs JSON by default, `format: 'pretty'` and LLMESH_LOG_FORMAT=pretty
 * give pretty lines. `--log-format xml` is refused with the option named.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { prettyLine } from '../../node/log-pretty.ts'
import { cli } from '../helpers/index.ts'

const LOGGER = join(import.meta.dirname, '../../node/logger.ts')

/** Runs a child that logs one entry; returns its stderr (a pipe: not a terminal). */
function logInChild(format: string | undefined, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const opt = format === undefined ? '' : `format: ${JSON.stringify(format)}, `
  const code = `import(${JSON.stringify(LOGGER)}).then((m) => m.createLogger({ ${opt}base: { role: 'node' } }).child({ svc: 'history' }).warn({ peer: 'abc', n: 3 }, 'could not save'))`
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', code],
      { env: { ...process.env, LLMESH_LOG_FORMAT: undefined, ...env } },
      (err, _out, stderr) => (err ? reject(err) : resolve(stderr)),
    )
  })
}

test('a JSON line becomes one readable line with its fields', () => {
  const line = prettyLine(
    JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 0, 2, 12, 4, 5, 123),
      pid: 1,
      hostname: 'h',
      role: 'seed',
      svc: 'history',
      msg: 'could not save',
      path: '/var/lib/llmesh',
      counts: { a: 1 },
    }),
  )
  assert.equal(line, '12:04:05.123 WARN  seed/history: could not save  path=/var/lib/llmesh counts={"a":1}\n')
})

test("an error's stack follows, indented; an error without a stack is a field", () => {
  const withStack = prettyLine(
    JSON.stringify({
      level: 50,
      time: 0,
      msg: 'failed',
      err: { message: 'boom', stack: 'Error: boom\n    at x (y.ts:1)' },
    }),
  )
  assert.equal(withStack.split('\n').length, 4, withStack)
  assert.match(withStack, /ERROR llmesh: failed\n {4}Error: boom\n {8}at x \(y\.ts:1\)\n$/)
  assert.match(prettyLine(JSON.stringify({ level: 30, time: 0, msg: 'x', err: 'EACCES' })), /: x {2}err=EACCES\n$/)
})

test('network text cannot split a line or drive the terminal', () => {
  const line = prettyLine(
    JSON.stringify({ level: 30, time: 0, msg: 'hello from\n12:00:00.000 ERROR forged', device_name: '\u001b[2Jx' }),
  )
  assert.equal(line.split('\n').length, 2, line)
  assert.ok(!line.includes('\u001b'))
  assert.match(line, /hello from\?12:00:00\.000 ERROR forged {2}device_name=\?\[2Jx\n$/)
  assert.equal(prettyLine('not json\u001b'), 'not json?\n')
})

test('stderr not a terminal: JSON by default; pretty when asked, by option or LLMESH_LOG_FORMAT', async () => {
  const json = await logInChild(undefined)
  const o = JSON.parse(json.trim()) as { msg: string; svc: string; level: number }
  assert.deepEqual([o.msg, o.svc, o.level], ['could not save', 'history', 40])
  for (const out of [await logInChild('pretty'), await logInChild(undefined, { LLMESH_LOG_FORMAT: 'pretty' })]) {
    assert.match(out, /^\d\d:\d\d:\d\d\.\d{3} WARN {2}node\/history: could not save {2}peer=abc n=3\n$/)
  }
})

test('--log-format takes pretty or json only', async () => {
  const r = await cli(['node', 'start', '--log-format', 'xml'])
  assert.equal(r.code, 2, r.stderr)
  assert.match(r.stderr, /log_format must be one of pretty, json/)
})
