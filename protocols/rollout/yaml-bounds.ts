/**
 * Bounds on hostile YAML (the operator's policy file, received by the seed over HTTP): size,
 * nesting depth and aliases, checked without recursing deeper than the bound itself.
 */
import { isMap, isPair, isSeq, type Node } from 'yaml'

/** Bounds on a policy file: a real one is a few hundred bytes, a few levels deep, with no aliases. */
export const POLICY_LIMITS = {
  /** Longest policy text, characters. */
  maxChars: 64 * 1024,
  /** Deepest nesting of collections (flow brackets or blocks). */
  maxDepth: 16,
  /** Most aliases (`*name`) in the file. */
  maxAliases: 32,
  /** yaml's `maxAliasCount`: bound on the nodes alias expansion may create. */
  maxAliasCount: 100,
} as const

/** Visits every node to `maxDepth + 1` levels (deeper nodes are not visited: the callback refuses first). */
export function walk(node: unknown, depth: number, visit: (node: Node, depth: number) => void): void {
  if (node === null || node === undefined || typeof node !== 'object') return
  if (isPair(node)) {
    walk(node.key, depth, visit)
    walk(node.value, depth, visit)
    return
  }
  visit(node as Node, depth)
  if (isMap(node) || isSeq(node)) for (const item of node.items) walk(item, depth + 1, visit)
}

/**
 * The line where flow collections (`[`, `{`) nest deeper than `max`, scanning the raw text
 * (so the parser never recurses that deep); quoted strings and comments are skipped.
 */
export function flowDepthLine(text: string, max: number): number | undefined {
  let depth = 0
  let line = 1
  let quote: string | undefined
  let comment = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (ch === '\n') {
      line++
      comment = false
      continue
    }
    if (comment) continue
    if (quote !== undefined) {
      if (ch === '\\' && quote === '"') i++
      else if (ch === quote) quote = undefined
      continue
    }
    if (ch === '"' || ch === "'") quote = ch
    else if (ch === '#' && (i === 0 || /\s/.test(text[i - 1]))) comment = true
    else if (ch === '[' || ch === '{') {
      if (++depth > max) return line
    } else if ((ch === ']' || ch === '}') && depth > 0) depth--
  }
  return undefined
}
