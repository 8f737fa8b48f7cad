/**
 * The one configuration (node/config/options.ts, resolve.ts): precedence flag > env > file >
 * default, defaults for an installed device and a checkout, `llmesh config print`, the generated
 * docs and `--help`, hostile configuration files refused with a typed error naming file:line, and
 * no `LLMESH_*` variable read anywhere else.
 */
import assert from 'node:assert/strict'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { configMarkdown } from '../../node/config/docs.ts'
import { ConfigError } from '../../node/config/errors.ts'
import { MAX_CONFIG_BYTES, OPTIONS } from '../../node/config/options.ts'
import { type ConfigInput, resolveConfig } from '../../node/config/resolve.ts'
import { cli, tmpDir } from '../helpers/index.ts'

const ROOT = join(import.meta.dirname, '../..')

function input(over: Partial<ConfigInput>): ConfigInput {
  return { role: 'node', installed: false, flags: {}, env: {}, cwd: '/work/x', ...over }
}

test('precedence: flag > env > file > default, each value with its source', async (t) => {
  const dir = await tmpDir(t)
  const file = join(dir, 'llmesh.yaml')
  await writeFile(
    file,
    ['api: 127.0.0.1:7001', 'tags: [file-a, file-b]', 'device_type: rpi5', 'data: ./d', 'report_interval: 5m'].join(
      '\n',
    ),
  )
  const env = { LLMESH_CONFIG: file, LLMESH_API: '127.0.0.1:7002', LLMESH_TAGS: 'env-a,env-b' }
  const r = await resolveConfig(input({ env, flags: { api: '127.0.0.1:7003' } }))
  assert.equal(r.file, file)
  assert.deepEqual(
    [r.values.api, r.values.tags, r.values.device_type, r.values.keep_versions, r.values.report_interval],
    ['127.0.0.1:7003', ['env-a', 'env-b'], 'rpi5', 3, 300_000],
  )
  assert.deepEqual(
    [r.sources.api, r.sources.tags, r.sources.device_type, r.sources.keep_versions, r.sources.config],
    ['flag', 'env', 'file', 'default', 'env'],
  )
  // a relative path in the file is taken from the file's directory; a flag's from the current one
  assert.equal(r.values.data, join(dir, 'd'))
  const f = await resolveConfig(input({ env, flags: { data: 'here', mdns: false } }))
  assert.deepEqual([f.values.data, f.values.mdns, f.sources.mdns], ['/work/x/here', false, 'flag'])
  // an empty variable counts as unset
  const e = await resolveConfig(input({ env: { ...env, LLMESH_API: '' } }))
  assert.deepEqual([e.values.api, e.sources.api], ['127.0.0.1:7001', 'file'])
})

test('defaults suit an installed device and a checkout; a missing default file is skipped', async () => {
  const dev = await resolveConfig(input({ installed: true, role: 'seed', env: { LLMESH_CONFIG: '' } }))
  assert.equal(dev.values.data, '/var/lib/llmesh-seed')
  assert.equal(dev.values.fleet, '/etc/llmesh')
  assert.equal(dev.values.config, '/etc/llmesh/llmesh.yaml')
  const co = await resolveConfig(input({ cwd: '/nonexistent-checkout' }))
  assert.deepEqual(
    [co.values.data, co.values.fleet, co.values.config, co.file],
    ['/nonexistent-checkout/node-data', '/nonexistent-checkout/fleet', '/nonexistent-checkout/llmesh.yaml', null],
  )
  assert.deepEqual(
    [
      co.values.api,
      co.values.mdns,
      co.values.inference_concurrency,
      co.values.inference_queue,
      co.values.keep_versions,
    ],
    ['127.0.0.1:7420', true, 2, 16, 3],
  )
  assert.equal(co.values.inference_threads, undefined)
})

test('hostile configuration files: typed errors naming file:line', async (t) => {
  const dir = await tmpDir(t)
  const refused = async (name: string, text: string, where: RegExp, what: RegExp) => {
    const file = join(dir, name)
    await writeFile(file, text)
    await assert.rejects(resolveConfig(input({ env: { LLMESH_CONFIG: file } })), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err))
      assert.equal(err.code, 'ERR_CONFIG')
      assert.match(err.where, where)
      assert.match(err.message, what)
      return true
    })
  }
  await refused('unknown.yaml', 'api: 127.0.0.1:1\n\ntgas: [a]\n', /unknown\.yaml:3$/, /unknown option "tgas"/)
  await refused('type.yaml', 'api: x\nkeep_versions: many\n', /type\.yaml:2$/, /keep_versions must be a whole number/)
  await refused('min.yaml', 'inference_concurrency: 0\n', /min\.yaml:1$/, /at least 1/)
  await refused('bool.yaml', '\nmdns: maybe\n', /bool\.yaml:2$/, /mdns must be true or false/)
  await refused('name.yaml', `name: ${'n'.repeat(65)}\n`, /name\.yaml:1$/, /name must be 1 to 64 characters/)
  await refused('yaml.yaml', 'api: [unclosed\n', /yaml\.yaml:\d+$/, /not valid YAML/)
  await refused('dup.yaml', 'api: a\napi: b\n', /dup\.yaml:\d+$/, /not valid YAML/)
  await refused('alias.yaml', 'tags: &t [a, b]\nbootstrap: *t\n', /alias\.yaml:2$/, /aliases are not accepted/)
  await refused('list.yaml', '- api\n- data\n', /list\.yaml:1$/, /must be a mapping/)
  await refused('level.yaml', 'log_level: loud\n', /level\.yaml:1$/, /log_level must be one of/)
  await refused('big.yaml', `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`, /big\.yaml$/, /larger than 65536 bytes/)
  const many = Array.from({ length: 65 }, (_, i) => `  - /ip4/127.0.0.1/tcp/${i}`).join('\n')
  await refused('many.yaml', `listen:\n${many}\n`, /many\.yaml:2$/, /more than 64 items/)
  // a file named explicitly must exist
  await assert.rejects(resolveConfig(input({ flags: { config: join(dir, 'absent.yaml') } })), {
    code: 'ERR_CONFIG',
    message: /absent\.yaml: cannot read the configuration file/,
  })
  // a bad variable names the variable
  await assert.rejects(resolveConfig(input({ env: { LLMESH_INFERENCE_QUEUE: '-1' } })), {
    message: /^LLMESH_INFERENCE_QUEUE: inference_queue must be a whole number/,
  })
})

test('llmesh config print: value and source of each option; a bad file exits 2 naming file:line', async (t) => {
  const dir = await tmpDir(t)
  const file = join(dir, 'llmesh.yaml')
  await writeFile(file, 'device_type: rpi5\ninference_queue: 4\n')
  const env = {
    ...process.env,
    LLMESH_CONFIG: file,
    LLMESH_KEEP_VERSIONS: '5',
    LLMESH_API_TOKEN: 'a-secret-of-16-chars',
  }
  const r = await cli(['config', 'print', '--role', 'seed', '--inference-threads', '2', '--json'], { env, cwd: dir })
  assert.equal(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout) as {
    role: string
    file: string
    options: Array<{ name: string; value: unknown; source: string }>
  }
  const row = (name: string) => {
    const o = out.options.find((x) => x.name === name)
    return [o?.value, o?.source]
  }
  assert.equal(out.file, file)
  assert.deepEqual(row('device_type'), ['rpi5', 'file'])
  assert.deepEqual(row('inference_queue'), [4, 'file'])
  assert.deepEqual(row('keep_versions'), [5, 'env'])
  assert.deepEqual(row('inference_threads'), [2, 'flag'])
  assert.deepEqual(row('data'), [join(dir, 'seed-data'), 'default'])
  assert.deepEqual(row('name'), [hostname().slice(0, 64) || 'llmesh', 'default'], 'a device is named after its host')
  assert.deepEqual(row('api_token'), ['(set)', 'env'], 'a secret is never printed')
  assert.doesNotMatch(r.stdout, /a-secret-of-16-chars/)
  assert.deepEqual(
    out.options.map((o) => o.name),
    OPTIONS.map((o) => o.name),
  )
  const human = await cli(['config', 'print'], { env, cwd: dir })
  assert.equal(human.code, 0, human.stderr)
  assert.match(human.stdout, /^device_type +rpi5 +file +LLMESH_DEVICE_TYPE$/m)
  assert.doesNotMatch(human.stdout, /a-secret-of-16-chars/)

  await writeFile(file, 'device_type: rpi5\nkeep_version: 4\n')
  const bad = await cli(['node', 'start'], { env, cwd: dir })
  assert.equal(bad.code, 2, bad.stderr)
  assert.match(bad.stderr, new RegExp(`${file}:2: unknown option "keep_version"`))
})

test('docs/config.md and --help are generated from the table', async () => {
  const doc = await readFile(join(ROOT, 'docs/config.md'), 'utf8')
  assert.equal(doc, configMarkdown(), 'docs/config.md is stale: run node scripts/config-docs.ts')
  for (const o of OPTIONS) assert.match(doc, new RegExp(`\\| \`${o.name}\` \\|.*\`${o.env}\``))
  const help = await cli(['seed', 'start', '--help'])
  assert.equal(help.code, 0)
  for (const o of OPTIONS) {
    if (o.flag !== undefined) assert.ok(help.stdout.includes(o.flag.split(' ')[0]), `${o.flag} in --help`)
    assert.ok(help.stdout.replace(/\s+/g, ' ').includes(o.env), `${o.env} in --help`)
  }
})

test('no LLMESH_* variable is read outside the configuration module', async () => {
  const readers: string[] = []
  for (const top of ['node', 'seed', 'cli', 'protocols']) {
    for (const entry of await readdir(join(ROOT, top), { recursive: true })) {
      if (!entry.endsWith('.ts')) continue
      const path = join(ROOT, top, entry)
      if (/process\.env(\.[A-Z_]|\[)/.test(await readFile(path, 'utf8'))) readers.push(relative(ROOT, path))
    }
  }
  assert.deepEqual(readers, [])
})
