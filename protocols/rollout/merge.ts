/**
 * Join of two rollout states of the same release: the union of their facts. Commutative,
 * associative and idempotent (set union); for a command id present on both sides with different
 * content (only possible with a forged or buggy signer), the one with the smaller canonical JSON
 * wins on every node.
 */
import { canonicalJson } from '../encoding.ts'
import { InvalidInputError } from '../errors.ts'
import type { CommandFact, RolloutState } from './state.ts'

/** Joins two states of one release. Throws InvalidInputError when they describe different releases. */
export function merge(a: RolloutState, b: RolloutState): RolloutState {
  if (a.release !== b.release || a.stages.join() !== b.stages.join() || a.releasedAt !== b.releasedAt) {
    throw new InvalidInputError(`cannot merge rollout states of ${a.release} and ${b.release}`)
  }
  const commands: Record<string, CommandFact> = { ...a.commands }
  for (const [id, c] of Object.entries(b.commands)) {
    const had = commands[id]
    if (!had || canonicalJson(c) < canonicalJson(had)) commands[id] = c
  }
  return {
    release: a.release,
    stages: a.stages,
    releasedAt: a.releasedAt,
    commands: sortKeys(commands),
    verdicts: sortKeys({ ...a.verdicts, ...b.verdicts }),
  }
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
}

/** Structural equality of two states (same facts). */
export function sameState(a: RolloutState, b: RolloutState): boolean {
  return canonicalJson(merge(a, a)) === canonicalJson(merge(b, b))
}
