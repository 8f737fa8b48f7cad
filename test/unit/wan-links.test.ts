/**
 * WAN links between sites (node/mesh/wan-links.ts, wan-rate.ts): which connections count as WAN
 * links, `--wan-rate` parsing, the token bucket's pace (simulated clock, then real time through
 * the Transform replication uses), and the options' refusals.
 */
import assert from 'node:assert/strict'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import { ConfigError } from '../../node/config/errors.ts'
import { resolveConfig } from '../../node/config/resolve.ts'
import { isWanAddress, type LocalNet, parseCidr, WanLinks } from '../../node/mesh/wan-links.ts'
import { parseRate, TokenBucket, throttle } from '../../node/mesh/wan-rate.ts'
import { InvalidInputError } from '../../protocols/errors.ts'

const NETS = ['127.0.0.1/8', '10.1.0.5/24', 'fd00:1::5/64', 'fe80::1/64'].map((c) => parseCidr(c) as LocalNet)

test('a WAN link: a peer off every local subnet, or relayed; loopback, same subnet, link-local and names are local', () => {
  assert.equal(isWanAddress('/ip4/127.0.0.1/tcp/4001', NETS), false)
  assert.equal(isWanAddress('/ip4/10.1.0.9/tcp/4001', NETS), false, 'same /24')
  assert.equal(isWanAddress('/ip4/10.1.1.9/tcp/4001', NETS), true, 'next /24: through a router')
  assert.equal(isWanAddress('/ip4/192.0.2.7/tcp/80/ws', NETS), true)
  assert.equal(isWanAddress('/ip6/fd00:1::abcd/tcp/4001', NETS), false)
  assert.equal(isWanAddress('/ip6/fd00:2::1/tcp/4001', NETS), true)
  assert.equal(isWanAddress('/ip6/fe80::99/tcp/4001', NETS), false)
  assert.equal(isWanAddress('/ip6/::1/tcp/4001', []), false)
  assert.equal(isWanAddress('/ip4/10.1.0.9/tcp/4001/p2p/12D3KooWA/p2p-circuit', NETS), true, 'relayed')
  assert.equal(isWanAddress('/dns4/hq.example/tcp/443/wss', NETS), false, 'cannot tell: never throttle a LAN')
  assert.equal(isWanAddress('/ip4/10.1.0.9/tcp/4001', []), true, 'no interfaces known: not local')
  assert.equal(parseCidr('10.1.0.5/33'), null)
  assert.equal(parseCidr('nonsense/8'), null)
  let reads = 0
  const links = new WanLinks({
    refreshMs: 1000,
    read: () => {
      reads++
      return NETS
    },
  })
  assert.equal(links.isWan('/ip4/10.9.0.1/tcp/1', 0), true)
  assert.equal(links.isWan('/ip4/10.1.0.1/tcp/1', 500), false)
  assert.equal(reads, 1, 'interfaces read once per refresh interval')
  links.isWan('/ip4/10.1.0.1/tcp/1', 1000)
  assert.equal(reads, 2)
})

test('--wan-rate: bits or bytes per second, bounded, typed refusals', () => {
  assert.equal(parseRate('5Mbit'), 625_000)
  assert.equal(parseRate('500kbit/s'), 62_500)
  assert.equal(parseRate('1.5mbps'), 187_500)
  assert.equal(parseRate('2MB'), 2_000_000)
  assert.equal(parseRate('512KiB'), 524_288)
  assert.equal(parseRate('625000'), 625_000)
  for (const bad of ['', 'fast', '5 parsecs', '-1Mbit', '1000', '1e9', `${'9'.repeat(20)}`]) {
    assert.throws(() => parseRate(bad), InvalidInputError, bad)
  }
})

test('token bucket: N bytes take (N - burst) / rate of the clock, in order', async () => {
  let now = 0
  const slept: number[] = []
  const b = new TokenBucket(1000, 100, {
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms)
      now += ms
    },
  })
  const order: number[] = []
  await Promise.all([1, 2, 3, 4, 5, 6].map((i) => b.take(100).then(() => order.push(i))))
  assert.deepEqual(order, [1, 2, 3, 4, 5, 6])
  // 600 bytes, 100 of them from the full bucket: 500 at 1000 B/s = 500 ms of the clock
  assert.equal(now, 500)
  assert.ok(slept.every((ms) => ms > 0))
  await b.take(10_000) // more than the burst is capped at the burst, never waits forever
  assert.equal(now, 600)
})

test('throttle(): replication bytes pass at the rate, intact', async () => {
  const bucket = new TokenBucket(100 * 1024, 16 * 1024)
  const data = Buffer.alloc(112 * 1024)
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff
  const got: Buffer[] = []
  const t0 = performance.now()
  await pipeline(
    Readable.from([data.subarray(0, 70_000), data.subarray(70_000)]),
    throttle(bucket),
    new Writable({
      write(chunk: Buffer, _e, done) {
        assert.ok(chunk.byteLength <= 16 * 1024, 'slices of at most the burst')
        got.push(chunk)
        done()
      },
    }),
  )
  const s = (performance.now() - t0) / 1000
  assert.ok(Buffer.concat(got).equals(data))
  // (112 - 16) KiB at 100 KiB/s: at least 0.96 s (a loaded machine only makes it slower)
  assert.ok(s >= 0.9, `${s.toFixed(2)} s`)
})

test('options: --wan-rate and --ws-port are refused with a ConfigError naming the flag', async () => {
  const input = { role: 'node' as const, installed: false, env: {}, cwd: '/work/x' }
  const r = await resolveConfig({ ...input, flags: { wan_rate: '5Mbit', ws_port: '8080', relay_server: true } })
  assert.deepEqual([r.values.wan_rate, r.values.ws_port, r.values.relay_server], ['5Mbit', 8080, true])
  const d = await resolveConfig({ ...input, flags: {} })
  assert.deepEqual([d.values.wan_rate, d.values.ws_port, d.values.relay_server], [undefined, undefined, false])
  await assert.rejects(resolveConfig({ ...input, flags: { wan_rate: 'fast' } }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.match(String((err as Error).message), /--wan-rate.*wan_rate must be a rate such as 5Mbit/)
    return true
  })
  await assert.rejects(resolveConfig({ ...input, flags: { ws_port: '70000' } }), /ws_port must be a TCP port/)
})
