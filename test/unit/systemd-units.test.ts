/**
 * The packaged systemd units (packaging/systemd/): `systemd-analyze verify` accepts them without a
 * warning, and `systemd-analyze security --offline=yes` rates each unit's exposure at most 2.5.
 * Both run without a running systemd (Debian's `systemd` package; .ci/run installs it). verify
 * checks that ExecStart= binaries exist, so it runs against a scratch root holding the units,
 * executables at the units' paths and a copy of the machine's own unit directory (sysinit.target…).
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'
import { AGENT_RESTART_EXIT_CODE, CURRENT_LINK, DEFAULT_AGENT_ROOT } from '../../node/agent-update/constants.ts'
import { WORKER_OOM_SCORE_ADJ } from '../../node/inference/constants.ts'
import { tmpDir } from '../helpers/index.ts'

const run = promisify(execFile)
const UNITS_DIR = resolve(import.meta.dirname, '../../packaging/systemd')
const UNITS = ['llmesh-node.service', 'llmesh-seed.service']
const MAX_EXPOSURE = 2.5
const SYSTEM_UNITS = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) =>
  existsSync(join(d, 'sysinit.target')),
)

function hasAnalyze(): boolean {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' })
    return SYSTEM_UNITS !== undefined
  } catch {
    if (process.env.CI === 'true') throw new Error('CI=true but systemd-analyze is missing (apt-get install systemd)')
    process.stderr.write('# systemd unit checks skipped: no systemd-analyze (Debian package systemd)\n')
    return false
  }
}
const skip = !hasAnalyze()

/** The executables a unit's Exec*= lines name (first word, `-`/`@`/`+` prefixes dropped). */
function execPaths(text: string): string[] {
  return [...text.matchAll(/^Exec\w+=[-@:+!]*(\/\S+)/gm)].map((m) => m[1] as string)
}

/** The overall exposure that `systemd-analyze security --offline=yes` gives a unit file. */
async function exposure(dir: string, unit: string): Promise<number> {
  const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', unit], { cwd: dir })
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(stdout)
  assert.ok(m, `no exposure level in:\n${stdout}`)
  return Number(m[1])
}

test('every unit runs the daemon hardened, as the llmesh user, from /etc/llmesh/llmesh.yaml, with a readiness check', () => {
  for (const unit of UNITS) {
    const text = readFileSync(join(UNITS_DIR, unit), 'utf8')
    for (const line of [
      'Type=exec',
      'Restart=on-failure',
      'User=llmesh',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'NoNewPrivileges=yes',
      'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
      'SystemCallFilter=@system-service',
      'OOMPolicy=continue',
    ]) {
      assert.match(text, new RegExp(`^${line}$`, 'm'), `${unit} lacks ${line}`)
    }
    assert.match(text, /^StateDirectory=llmesh(-seed)?$/m)
    // the OOM killer's choice: the worker (raised after each spawn), not the daemon
    const adj = Number(/^OOMScoreAdjust=(-?\d+)$/m.exec(text)?.[1])
    assert.ok(adj < 0 && adj < WORKER_OOM_SCORE_ADJ, `${unit}: OOMScoreAdjust=${adj}`)
    assert.match(text, /^ExecStartPost=.*wait-ready\.js /m, `${unit} has no readiness check`)
    // settings come from the one configuration file, not from flags smuggled through an env variable
    assert.match(
      text,
      /^ExecStart=\S+ (agent run --config \/etc\/llmesh\/llmesh\.yaml -- )?(node|seed) start --config \/etc\/llmesh\/llmesh\.yaml --data \S+$/m,
    )
    assert.match(text, /^ConditionPathExists=\/etc\/llmesh\/llmesh\.yaml$/m)
    assert.doesNotMatch(text, /\$LLMESH_/, `${unit} expands an LLMESH_* variable`)
    // V8's JIT needs W+X pages: this setting would kill node at start
    assert.doesNotMatch(text, /^MemoryDenyWriteExecute=yes/m)
  }
})

test('the device unit runs the daemon under the agent wrapper, restarts on its exit code, and may write the agent root', () => {
  const text = readFileSync(join(UNITS_DIR, 'llmesh-node.service'), 'utf8')
  const start = /^ExecStart=(\S+) agent run (.*) -- node start /m.exec(text)
  assert.ok(start, 'ExecStart= is not `llmesh agent run … -- node start …`')
  assert.equal(start[1], `${DEFAULT_AGENT_ROOT}/${CURRENT_LINK}/bin/llmesh`)
  assert.match(text, new RegExp(`^RestartForceExitStatus=${AGENT_RESTART_EXIT_CODE}$`, 'm'))
  assert.match(text, new RegExp(`^ReadWritePaths=${DEFAULT_AGENT_ROOT}$`, 'm'))
  // the wrapper alone gets SIGTERM and passes it on (control-group would signal the daemon twice)
  assert.match(text, /^KillMode=mixed$/m)
})

test('systemd-analyze verify accepts both units without a warning', { skip }, async (t) => {
  const root = await tmpDir(t, 'llmesh-units-')
  const units = join(root, 'etc/systemd/system')
  mkdirSync(units, { recursive: true })
  cpSync(SYSTEM_UNITS as string, join(root, 'usr/lib/systemd/system'), { recursive: true })
  for (const unit of UNITS) {
    const text = readFileSync(join(UNITS_DIR, unit), 'utf8')
    writeFileSync(join(units, unit), text)
    for (const exe of execPaths(text)) {
      mkdirSync(join(root, exe, '..'), { recursive: true })
      writeFileSync(join(root, exe), '#!/bin/sh\n')
      chmodSync(join(root, exe), 0o755)
    }
  }
  for (const unit of UNITS) {
    const { stderr } = await run('systemd-analyze', ['verify', `--root=${root}`, unit])
    assert.equal(stderr.trim(), '', `${unit}: ${stderr}`)
  }
  // the check can fail: a unit with an unknown key is reported
  writeFileSync(join(units, 'bad.service'), '[Service]\nExecStart=/bin/true\nNoSuchKey=1\n')
  const bad = await run('systemd-analyze', ['verify', `--root=${root}`, 'bad.service']).catch((e) => e)
  assert.match(String(bad.stderr), /NoSuchKey/)
})

test('systemd-analyze security rates each unit at most 2.5', { skip }, async (t) => {
  for (const unit of UNITS) {
    const level = await exposure(UNITS_DIR, unit)
    t.diagnostic(`${unit}: exposure ${level}`)
    assert.ok(level <= MAX_EXPOSURE, `${unit} exposure ${level} > ${MAX_EXPOSURE}`)
  }
  // the measure can fail: the same unit without its sandbox rates far worse
  const dir = await tmpDir(t, 'llmesh-units-')
  const bare = readFileSync(join(UNITS_DIR, UNITS[0] as string), 'utf8')
    .split('\n')
    .filter((l) => !/^(Protect|Private|Restrict|SystemCall|Capability|NoNewPriv|Lock|UMask|Device|Remove)/.test(l))
    .join('\n')
  writeFileSync(join(dir, 'bare.service'), bare)
  assert.ok((await exposure(dir, 'bare.service')) > 5)
})
