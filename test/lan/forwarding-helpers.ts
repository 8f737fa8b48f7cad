/**
 * Helpers of the LAN federated-serving test: curl's answers parsed (status, headers, body,
 * time_total; curl runs inside a namespace, a failed transfer is an answer with its exit code),
 * Server-Sent Events payloads, and the files under a directory that hold a needle (the stores'
 * messages.jsonl lines, base64 wire bytes, decoded too), for the privacy check.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { scaled } from '../helpers/index.ts'
import type { Host, TestBed } from './netns.ts'

/** What curl got: status, lower-cased headers, body, its exit code and time_total (ms). */
export interface Answer {
  status: number
  headers: Record<string, string>
  body: string
  exit: number
  ms: number
}

/** Parses `curl -i … -w '\n%{time_total}'` output (the time line is absent from a spawned curl). */
export function parseCurl(out: string, exit: number, timed: boolean): Answer {
  const cut = timed ? out.lastIndexOf('\n') : out.length
  const raw = out.slice(0, cut)
  const sep = raw.indexOf('\r\n\r\n')
  const lines = (sep < 0 ? raw : raw.slice(0, sep)).split('\r\n')
  const headers: Record<string, string> = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
  }
  const status = Number(/^HTTP\/\S+ (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0)
  return {
    status,
    headers,
    body: sep < 0 ? '' : raw.slice(sep + 4),
    exit,
    ms: timed ? Number(out.slice(cut + 1)) * 1000 : 0,
  }
}

/** The `data:` payloads of an SSE body. */
export const sseData = (body: string) =>
  body
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => l.slice(6).trim())

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Every file under `dir` holding `needle`; messages.jsonl lines are base64 wire bytes, decoded too. */
export async function filesWith(dir: string, needle: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue
    const p = join(e.parentPath, e.name)
    const bytes = await readFile(p).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return Buffer.alloc(0)
      throw err
    })
    let hit = bytes.includes(needle)
    if (!hit && e.name === 'messages.jsonl') {
      for (const l of bytes.toString('utf8').split('\n')) {
        if (!l.startsWith('{')) continue
        const w = (JSON.parse(l) as { w?: string }).w
        if (w !== undefined && Buffer.from(w, 'base64').includes(needle)) hit = true
      }
    }
    if (hit) out.push(p)
  }
  return out
}

/** POSTs JSON with curl inside `from`'s namespace; a failed transfer is an answer with `exit` set. */
export async function curlPost(bed: TestBed, from: Host, url: string, body: unknown, timeoutS = 60): Promise<Answer> {
  const args = ['-s', '-i', '-N', '--max-time', String(scaled(timeoutS)), '-H', 'content-type: application/json']
  args.push('--data-binary', JSON.stringify(body), '-w', '\n%{time_total}', url)
  try {
    return parseCurl((await bed.exec(from, 'curl', args, (timeoutS + 5) * 1000)).stdout, 0, true)
  } catch (err) {
    const e = err as { stdout?: string; code?: unknown }
    return parseCurl(e.stdout ?? '', typeof e.code === 'number' ? e.code : -1, true)
  }
}
