/**
 * The shape of one configuration option (node/config/options.ts holds the one list; the option
 * groups options-*.ts are typed by it without importing the list back).
 */

/** Value kinds: how a flag, a variable or a file value is parsed. */
export type OptionKind = 'string' | 'path' | 'list' | 'bool' | 'int' | 'duration'

/** Which command reads the option. */
export type OptionRole = 'node' | 'seed'

/** Where the defaults are computed for. */
export interface DefaultsContext {
  role: OptionRole
  /** Running from an installed package (`/opt/llmesh/…`), not a checkout. */
  installed: boolean
}

/** One option. */
export interface OptionSpec {
  /** Its name: also the key in the file and `config print`. */
  readonly name: string
  /** Commander flag spelling (`--no-…` for a boolean on by default); absent: env and file only. */
  readonly flag?: string
  readonly env: string
  /** Key in the configuration file; absent: not settable from the file (secrets, the file itself). */
  readonly key?: string
  readonly kind: OptionKind
  /** The default, by role and layout; absent: none (the daemon decides, or the feature is off). */
  readonly default?: (c: DefaultsContext) => string | number | boolean
  /** The default as the docs state it. */
  readonly defaultText: string
  readonly help: string
  /** A secret: `config print` shows whether it is set, never its value. */
  readonly secret?: boolean
  /** Smallest accepted value of an `int`. */
  readonly min?: number
  /** A `list` flag given once per value (`--listen a --listen b`); other lists are comma-separated. */
  readonly repeatable?: boolean
}
