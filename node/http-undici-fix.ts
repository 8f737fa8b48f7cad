/**
 * Keeps Node's bundled undici (fetch, WebSocket: ~1 MB of JavaScript and a WebAssembly HTTP parser)
 * out of a daemon that never uses it: −10 MiB RSS in a bare Node process, but only −1.5 MiB of V8
 * heap and −1 MiB external memory in a daemon, whose RSS moved within run-to-run noise (the daemon
 * runs WebAssembly anyway: the pnet cipher; docs/benchmarks.md, "Idle footprint of a device").
 *
 * Why it loads at all: `node:http` exports `WebSocket`, `CloseEvent` and `MessageEvent` as lazy
 * getters that load undici, and the first `import … from 'node:http'` from an ES module (here
 * @libp2p/websockets' listener) builds the module's ESM facade, which reads every export once. A
 * CommonJS `require('node:http')` reads none. Importing this module removes those three exports
 * from `node:http` (the same classes stay on globalThis, where undici is loaded on first use, as is
 * `fetch`). It works only if it runs before the module graph that imports `node:http` is loaded:
 * cli/bin.ts imports it first, and the commands import the daemon dynamically.
 */
import { createRequire } from 'node:module'

/** The exports of `node:http` that load undici when read. */
export const UNDICI_HTTP_EXPORTS = ['WebSocket', 'CloseEvent', 'MessageEvent'] as const

const http = createRequire(import.meta.url)('node:http') as Record<string, unknown>
for (const name of UNDICI_HTTP_EXPORTS) {
  if (Object.getOwnPropertyDescriptor(http, name)?.configurable === true) delete http[name]
}
