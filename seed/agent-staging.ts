/**
 * Agent packages staged for a multi-architecture release (`POST /agent-releases?stage=1`, then
 * `POST /agent-releases?packages=<token>,…`): each staged package is chunked into its lineage feed
 * already and waits here, under a random token, for the publish that names it. In memory and
 * bounded: at most `MAX_STAGED_AGENT_PACKAGES` (the oldest is dropped), each for
 * `STAGED_AGENT_PACKAGE_TTL_MS`; a seed restart forgets them (the chunks stay in the feed, and a
 * new staging of the same file adds no chunk).
 */
import { randomBytes } from 'node:crypto'
import { InvalidInputError } from '../protocols/errors.ts'
import type { AgentPackage } from '../protocols/schemas/index.ts'
import { MAX_STAGED_AGENT_PACKAGES, STAGED_AGENT_PACKAGE_TTL_MS } from './constants.ts'

/** Most packages one release names (the manifest schema's bound). */
const MAX_PACKAGES = 8
const TOKEN = /^[0-9a-f]{32}$/

/** The staged packages. */
export class AgentStaging {
  private readonly staged = new Map<string, { version: string; pkg: AgentPackage; at: number }>()

  /** Keeps a package for `version`; returns its token. */
  add(version: string, pkg: AgentPackage, now: number): string {
    this.expire(now)
    while (this.staged.size >= MAX_STAGED_AGENT_PACKAGES) this.staged.delete(this.staged.keys().next().value as string)
    const token = randomBytes(16).toString('hex')
    this.staged.set(token, { version, pkg, at: now })
    return token
  }

  /**
   * The packages `list` (comma-separated tokens) names, for `version`, one per architecture;
   * InvalidInputError naming the first problem. Nothing is consumed (see `take`).
   */
  resolve(list: string, version: string, now: number): AgentPackage[] {
    this.expire(now)
    const tokens = list.split(',').filter(Boolean)
    if (tokens.length === 0 || tokens.length > MAX_PACKAGES)
      throw new InvalidInputError(`packages: give 1 to ${MAX_PACKAGES} staged package tokens`)
    const out: AgentPackage[] = []
    for (const t of tokens) {
      const s = TOKEN.test(t) ? this.staged.get(t) : undefined
      if (s === undefined)
        throw new InvalidInputError(`staged package ${t.slice(0, 32)} is unknown or expired: stage it again`)
      if (s.version !== version)
        throw new InvalidInputError(`staged package ${t} was staged for agent ${s.version}, not ${version}`)
      if (out.some((p) => p.arch === s.pkg.arch))
        throw new InvalidInputError(`two staged packages for ${s.pkg.arch}: one package per architecture`)
      out.push(s.pkg)
    }
    return out
  }

  /** Forgets the tokens of a published release. */
  take(list: string): void {
    for (const t of list.split(',')) this.staged.delete(t)
  }

  private expire(now: number): void {
    for (const [t, s] of this.staged) if (now - s.at > STAGED_AGENT_PACKAGE_TTL_MS) this.staged.delete(t)
  }
}
