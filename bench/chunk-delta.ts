/**
 * What a small change costs on the wire under each chunk parameter set: a v1 file and a changed v2
 * are chunked (the store's FastCDC chunker), and the bytes of v2's chunks v1 does not hold are what a
 * device holding v1 fetches for v2 (delta reuse). Also prints the chunk count of v1 (per-block
 * costs scale with it). Random bytes, a fixed seed per change, so every parameter set sees the same
 * files.
 *
 * Usage: node bench/chunk-delta.ts [--mib 64] [--sets 16/64/256,32/128/256,32/128/512,64/256/1024]
 */
import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'
import { chunkBuffer } from '../node/store/chunker.ts'

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '64' },
    sets: { type: 'string', default: '16/64/256,32/128/256,32/128/512,64/256/1024' },
  },
})
const SIZE = Number(values.mib) * 1024 * 1024
const SETS = values.sets.split(',').map((s) => {
  const [min, avg, max] = s.split('/').map((x) => Number(x) * 1024)
  return { min, avg, max }
})

/** Deterministic pseudo-random bytes (sha256 in counter mode). */
function bytes(n: number, seed: string): Buffer {
  const out = Buffer.allocUnsafe(n)
  for (let off = 0, i = 0; off < n; off += 32, i++) {
    createHash('sha256')
      .update(`${seed}:${i}`)
      .digest()
      .copy(out, off, 0, Math.min(32, n - off))
  }
  return out
}

const v1 = bytes(SIZE, 'v1')
const mid = Math.floor(SIZE / 2)
const changes: Array<[string, Buffer]> = [
  ['100 B inserted', Buffer.concat([v1.subarray(0, mid), bytes(100, 'ins'), v1.subarray(mid)])],
  ['1 MiB overwritten', Buffer.concat([v1.subarray(0, mid), bytes(1 << 20, 'ow'), v1.subarray(mid + (1 << 20))])],
  [
    '16 MiB overwritten (a layer)',
    Buffer.concat([v1.subarray(0, mid), bytes(16 << 20, 'l'), v1.subarray(mid + (16 << 20))]),
  ],
]

const kib = (n: number) => n / 1024
console.log(`${values.mib} MiB of pseudo-random bytes; bytes of v2's chunks v1 does not hold (what a device fetches)\n`)
console.log(`| change | ${SETS.map((s) => `${kib(s.min)}/${kib(s.avg)}/${kib(s.max)} KiB`).join(' | ')} |`)
console.log(`|---|${SETS.map(() => '---:').join('|')}|`)
const counts = SETS.map((s) => chunkBuffer(v1, s).length)
console.log(`| chunks of v1 | ${counts.map((n) => n.toLocaleString('en')).join(' | ')} |`)
for (const [label, v2] of changes) {
  const cells = SETS.map((s) => {
    const have = new Set(chunkBuffer(v1, s).map((c) => c.hash))
    let fresh = 0
    for (const c of chunkBuffer(v2, s)) if (!have.has(c.hash)) fresh += c.size
    return `${fresh.toLocaleString('en')} B`
  })
  console.log(`| ${label} | ${cells.join(' | ')} |`)
}
