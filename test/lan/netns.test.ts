/**
 * The test bed itself: it builds a private LAN, shapes links, and always removes what it made
 * (destroy, SIGTERM of the owning process, sweep of a dead owner's leftovers).
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { canRunBed, REPO_ROOT, sweepStale, TestBed, until } from './netns.ts'

const skip = canRunBed() ? false : 'needs root and ip netns'

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n !== '')
}

describe('LAN test bed', { skip }, () => {
  test('hosts reach each other on the private bridge; the host namespace gets no new interface', async () => {
    const hostLinks = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })
    const bed = await TestBed.create({ hosts: 2 })
    try {
      assert.equal(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }), hostLinks)
      const route = (await bed.exec(bed.hosts[0], 'ip', ['route'])).stdout
      assert.match(route, /224\.0\.0\.0\/4 dev eth0/)
      assert.match(bed.hosts[1].ip, /^10\.\d+\.\d+\.11$/)
      // a TCP round trip across the bridge
      const server = bed.spawn(bed.hosts[1], 'iperf3-server', 'iperf3', [
        '-s',
        '-1',
        '--forceflush',
        '-B',
        bed.hosts[1].ip,
      ])
      await until(() => /listening/i.test(server.stdout), 10_000, 'iperf3 server')
      await bed.shape(bed.hosts[0], { rate: '20mbit' })
      const { stdout } = await bed.exec(bed.hosts[0], 'iperf3', ['-c', bed.hosts[1].ip, '-t', '2', '-J'])
      const bps = (JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received
        .bits_per_second
      assert.ok(bps > 1e6 && bps < 30e6, `shaped link carried ${Math.round(bps / 1e6)} Mbit/s`)
    } finally {
      await bed.destroy()
    }
    assert.deepEqual(
      namespaces().filter((n) => n.startsWith(`llmt-${bed.id}`)),
      [],
    )
  })

  test('GETs from inside a namespace through its probe: fails like curl -f, a killed probe comes back, none left after destroy', async () => {
    const bed = await TestBed.create({ hosts: 2 })
    const [a, b] = bed.hosts
    const pids = (ns: string) =>
      execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l !== '')
        .map(Number)
    let probes: number[] = []
    try {
      // a server reachable only inside the bed: /ok answers, anything else is a 404
      const server = `require('node:http').createServer((q, s) => { s.statusCode = q.url === '/ok' ? 200 : 404; s.end(q.url) }).listen(8080, '${b.ip}', () => console.log('up'))`
      const srv = bed.spawn(b, 'http-server', process.execPath, ['-e', server])
      await until(() => srv.stdout.includes('up'), 10_000, 'server')
      assert.equal(await bed.get(a, `http://${b.ip}:8080/ok`), '/ok', 'across the bridge')
      assert.equal(await bed.get(b, `http://${b.ip}:8080/ok`), '/ok', 'in its own namespace')
      await assert.rejects(bed.get(a, `http://${b.ip}:8080/missing`), /HTTP 404/)
      await assert.rejects(bed.get(a, `http://${b.ip}:8081/ok`), /ECONNREFUSED/)
      assert.equal(pids(a.ns).length, 1, 'one probe in the client namespace')
      const [first] = pids(a.ns)
      process.kill(first, 'SIGKILL')
      await until(
        async () => (await bed.get(a, `http://${b.ip}:8080/ok`).catch(() => '')) === '/ok',
        10_000,
        'a new probe',
      )
      assert.equal(pids(a.ns).length, 1, 'one probe again')
      assert.notEqual(pids(a.ns)[0], first)
      probes = [...pids(a.ns), ...pids(b.ns).filter((p) => p !== srv.child.pid)]
      assert.equal(probes.length, 2)
    } finally {
      await bed.destroy()
    }
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    }
    assert.deepEqual(probes.filter(alive), [], 'every probe ended with the bed')
  })

  test('SIGTERM of the owning process removes its namespaces', async () => {
    const script = `import { TestBed } from ${JSON.stringify(join(REPO_ROOT, 'test', 'lan', 'netns.ts'))}
const bed = await TestBed.create({ hosts: 2 })
process.stdout.write(bed.id + '\\n')
setInterval(() => {}, 1000)`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let id = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      id += d
    })
    await until(() => id.includes('\n'), 20_000, 'child bed')
    id = id.trim()
    assert.equal(namespaces().filter((n) => n.startsWith(`llmt-${id}`)).length, 3)
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    assert.deepEqual(
      namespaces().filter((n) => n.startsWith(`llmt-${id}`)),
      [],
    )
  })

  test('leftovers of a crashed run (dead owner pid) are swept', async () => {
    const dead = spawn(process.execPath, ['-e', '0'])
    await new Promise((r) => dead.once('exit', r))
    const ns = `llmt-${dead.pid}-abcdef-0`
    execFileSync('ip', ['netns', 'add', ns])
    const live = `llmt-${process.pid}-abcdef-9`
    execFileSync('ip', ['netns', 'add', live])
    try {
      const swept = sweepStale()
      assert.ok(swept.includes(ns))
      assert.ok(!namespaces().includes(ns))
      assert.ok(namespaces().includes(live), 'a live owner keeps its namespaces')
    } finally {
      execFileSync('ip', ['netns', 'delete', live])
    }
  })
})
