/** The installed node-llama-cpp version (the inference runtime a manifest's `runtime` range is checked against). */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

let cached: string | null = null

/** Version of node-llama-cpp, or `0.0.0` when it cannot be found. */
export async function runtimeVersion(): Promise<string> {
  if (cached !== null) return cached
  try {
    let dir = dirname(createRequire(import.meta.url).resolve('node-llama-cpp'))
    for (let i = 0; i < 5; i++) {
      try {
        const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string }
        if (pkg.name === 'node-llama-cpp' && typeof pkg.version === 'string') {
          cached = pkg.version
          return cached
        }
      } catch {}
      dir = dirname(dir)
    }
  } catch {}
  cached = '0.0.0'
  return cached
}
