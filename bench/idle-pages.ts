/**
 * The memory two processes of one device hold together, shared pages counted once: the union of
 * the physical pages resident in each (`/proc/<pid>/smaps` for the mappings with resident pages,
 * `/proc/<pid>/pagemap` for their page frame numbers; needs root, which sees the frame numbers).
 * The supervisor (`agent run`) and the daemon run one node binary, whose code pages both map: a
 * plain sum of their RSS counts those pages twice.
 */
import { open, readFile } from 'node:fs/promises'

const PAGE = 4096
/** pagemap entry: bit 63 present, bits 0-54 the page frame number. */
const PRESENT = 1n << 63n
const PFN_MASK = (1n << 55n) - 1n

/** The page frame numbers resident in `pid` (empty when it is gone or frame numbers are hidden). */
export async function residentFrames(pid: number): Promise<Set<number>> {
  const frames = new Set<number>()
  const smaps = await readFile(`/proc/${pid}/smaps`, 'utf8').catch(() => '')
  const fh = await open(`/proc/${pid}/pagemap`, 'r').catch(() => null)
  if (fh === null) return frames
  try {
    let range: [number, number] | null = null
    for (const line of smaps.split('\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line)
      if (m !== null) {
        range = [Number.parseInt(m[1], 16) / PAGE, Number.parseInt(m[2], 16) / PAGE]
        continue
      }
      if (range === null || !line.startsWith('Rss:')) continue
      const [first, end] = range
      range = null
      if (Number.parseInt(line.slice(4), 10) === 0) continue
      const buf = Buffer.alloc((end - first) * 8)
      const { bytesRead } = await fh.read(buf, 0, buf.length, first * 8)
      for (let off = 0; off + 8 <= bytesRead; off += 8) {
        const e = buf.readBigUInt64LE(off)
        if ((e & PRESENT) !== 0n && (e & PFN_MASK) !== 0n) frames.add(Number(e & PFN_MASK))
      }
    }
  } finally {
    await fh.close()
  }
  return frames
}

/** Bytes resident in any of `pids`, each physical page counted once. */
export async function unionResident(pids: number[]): Promise<number> {
  const all = new Set<number>()
  for (const pid of pids) for (const f of await residentFrames(pid)) all.add(f)
  return all.size * PAGE
}
