/**
 * Download progress (issue #17, goal 4): bytes, rate, ETA and source peers for /status and
 * `llmesh status`, a log line at each 10 % step, one at a stall and one when bytes flow again.
 */
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import pino from 'pino'
import { formatDownload } from '../../cli/output.ts'
import { DownloadProgress } from '../../node/install/progress.ts'

function captureLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const dest = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()))
      cb()
    },
  })
  return { logger: pino({ level: 'info' }, dest), lines }
}

test('progress: deciles logged once each, rate and ETA from the last seconds, peers by bytes, stalls', async () => {
  const { logger, lines } = captureLogger()
  let now = 1_000_000
  const p = new DownloadProgress(logger, {
    model: 'm',
    version: '2.0.0',
    blocksHave: 10,
    blocksTotal: 110,
    bytesHave: 10 * 1000,
    bytesTotal: 110 * 1000,
    stallMs: 5000,
    now: () => now,
  })
  try {
    for (let i = 0; i < 50; i++) {
      now += 100
      p.block(1000, i % 5 === 0 ? 'peerB' : 'peerA')
    }
    const s = p.status()
    assert.equal(s.blocks_have, 60)
    assert.equal(s.bytes_have, 60_000)
    assert.equal(s.rate_bps, 10_000, '1000 B every 100 ms')
    assert.equal(s.eta_s, 5)
    assert.deepEqual(
      s.peers.map((x) => [x.peer, x.bytes]),
      [
        ['peerA', 40_000],
        ['peerB', 10_000],
      ],
    )
    const deciles = () => lines.filter((l) => /^download \d+%$/.test(String(l.msg))).map((l) => l.msg)
    assert.deepEqual(deciles(), ['download 10%', 'download 20%', 'download 30%', 'download 40%', 'download 50%'])
    assert.match(formatDownload(s), /^downloading 2\.0\.0: 0\.1\/0\.1 MiB \(54%\), 0\.0 MiB\/s, ETA 5s, from 2 peer/)

    now += 4000
    p.tick()
    assert.equal(p.status().stalled, false)
    now += 1500
    p.tick()
    p.tick()
    const st = p.status()
    assert.equal(st.stalled, true)
    assert.equal(st.rate_bps, 0, 'nothing arrived in the window')
    assert.equal(st.eta_s, null)
    assert.equal(lines.filter((l) => l.msg === 'download stalled: no block arrived').length, 1, 'one line per stall')
    assert.match(formatDownload(st), /STALLED$/)
    now += 100
    p.block(1000, 'peerB')
    assert.equal(p.status().stalled, false)
    assert.equal(lines.filter((l) => l.msg === 'download resumed').length, 1)
    for (let i = 0; i < 49; i++) p.block(1000, 'peerA')
    assert.equal(deciles().at(-1), 'download 100%')
    assert.equal(p.status().eta_s, 0)
    const last = lines.find((l) => l.msg === 'download 100%') as { peers: string[]; model: string }
    assert.deepEqual(last.peers, ['peerA', 'peerB'])
    assert.equal(last.model, 'm')
  } finally {
    p.stop()
  }
})

test('progress: a stall is signalled at its start and every 3 stall periods while it lasts, not after bytes flow', () => {
  const { logger } = captureLogger()
  let now = 0
  let signals = 0
  const p = new DownloadProgress(logger, {
    model: 'm',
    version: '1.0.0',
    blocksHave: 0,
    blocksTotal: 10,
    bytesHave: 0,
    bytesTotal: 10_000,
    stallMs: 1000,
    onStall: () => {
      signals++
      throw new Error('a failing handler does not stop the tick')
    },
    now: () => now,
  })
  try {
    now = 999
    p.tick()
    assert.equal(signals, 0)
    now = 1000
    p.tick()
    p.tick()
    assert.equal(signals, 1, 'at the start of the stall, once')
    now = 3999
    p.tick()
    assert.equal(signals, 1)
    now = 4000
    p.tick()
    assert.equal(signals, 2, 'again after 3 stall periods')
    p.block(1000, 'peerA')
    now = 4500
    p.tick()
    now = 4999
    p.tick()
    assert.equal(signals, 2, 'bytes flow again: no signal')
    now = 5000
    p.tick()
    assert.equal(signals, 3, 'a new stall is signalled at its start')
  } finally {
    p.stop()
  }
})
