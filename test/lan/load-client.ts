/**
 * Steady inference load for LAN tests, run inside a namespace of the bed:
 *   node test/lan/load-client.ts [--max-tokens 8] [--chat] [--pause-ms 0] <baseURL>…
 * One sequential loop per base URL (an OpenAI-compatible `/v1`), each asking for a short
 * completion (`--chat`: chat completion), one request at a time, until SIGTERM; an answered request
 * waits `--pause-ms`, a failed one (e.g. while a device switches versions) at least 100 ms. Prints
 * a JSON line per URL every 5 s and at exit: requests ok, failed, and the longest time between two
 * answered requests (`gapMs`, ms).
 */
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({
  options: {
    'max-tokens': { type: 'string', default: '8' },
    chat: { type: 'boolean', default: false },
    'pause-ms': { type: 'string', default: '0' },
  },
  allowPositionals: true,
})
const maxTokens = Number(values['max-tokens'])
const chat = values.chat === true
const pauseMs = Number(values['pause-ms'])
const counts = new Map(positionals.map((u) => [u, { ok: 0, failed: 0, gapMs: 0 }]))
let running = true
const stopping = new AbortController()

const print = (event: string): void => {
  for (const [url, c] of counts) process.stdout.write(`${JSON.stringify({ event, url, ...c, time: Date.now() })}\n`)
}

async function loop(url: string): Promise<void> {
  const c = counts.get(url)!
  const body = chat
    ? { model: 'tiny', messages: [{ role: 'user', content: 'once upon a time' }], max_tokens: maxTokens }
    : { model: 'tiny', prompt: 'once upon a time', max_tokens: maxTokens }
  let lastOk = Date.now()
  while (running) {
    try {
      const res = await fetch(`${url}/${chat ? 'chat/completions' : 'completions'}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(30_000)]),
      })
      await res.arrayBuffer()
      if (!res.ok) throw new Error(String(res.status))
      c.ok++
      c.gapMs = Math.max(c.gapMs, Date.now() - lastOk)
      lastOk = Date.now()
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs))
    } catch {
      c.failed++
      await new Promise((r) => setTimeout(r, Math.max(100, pauseMs)))
    }
  }
}

const loops = positionals.map(loop)
const timer = setInterval(() => print('progress'), 5000)
const stop = (): void => {
  running = false
  stopping.abort()
  clearInterval(timer)
  void Promise.allSettled(loops).then(() => {
    print('done')
    process.exit(0)
  })
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
