/**
 * Loopback TCP ports for tests that start servers on a port chosen beforehand (a child process's
 * `--api`, a Prometheus scrape target). A port found free here can still be taken by another test
 * before it is used: callers bind soon after, and a clash fails loudly (EADDRINUSE), never silently.
 */
import { createServer, type Server } from 'node:net'

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(undefined))
    s.listen(port, '127.0.0.1', () => resolve(s))
  })
}

function close(s: Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()))
}

/** A free loopback TCP port (closed again before returning). */
export async function freePort(): Promise<number> {
  const s = await listen(0)
  if (s === undefined) throw new Error('no free loopback port')
  const { port } = s.address() as { port: number }
  await close(s)
  return port
}

/** The first of `n` consecutive free loopback TCP ports (for commands that take a base port). */
export async function freePortRun(n: number, tries = 50): Promise<number> {
  for (let i = 0; i < tries; i++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000)
    const held: Server[] = []
    for (let p = base; p < base + n; p++) {
      const s = await listen(p)
      if (s === undefined) break
      held.push(s)
    }
    await Promise.all(held.map(close))
    if (held.length === n) return base
  }
  throw new Error(`no run of ${n} free loopback ports in ${tries} tries`)
}
