/**
 * What needs the operator, drawn above the release cards from GET /rollout (`errors`, `conflicts`)
 * and GET /status (`loops.failing`). Pure DOM building with `h` (text nodes only).
 */
import { h } from './dom.js'

/**
 * What needs the operator, above the release cards: releases that fail now (their evaluation
 * throws: every other release keeps moving), releases with several valid manifests (conflicted:
 * refused on every node; or the same file published twice: the lowest seq counts), and items a
 * periodic loop fails on. Null when there is nothing to show.
 * @param {{ errors?: Array<{ model: string, version: string, code: string, message: string, count: number }>,
 *   conflicts?: Array<{ model: string, version: string, outcome: string, manifests: Array<{ seq: number, sha256: string }> }> }} rollout
 * @param {{ failing?: Array<{ loop: string, item: string, code: string, message: string, count: number }> } | undefined} loops
 */
export function renderProblems(rollout, loops) {
  const items = [
    ...(rollout.conflicts ?? []).map((c) =>
      h(
        'li',
        { 'data-problem': c.outcome, 'data-release': `${c.model}@${c.version}` },
        h('span', { class: c.outcome === 'conflicted' ? 'pill bad' : 'pill warn' }, c.outcome),
        ` ${c.model}@${c.version}: ${c.manifests.length} valid manifests (${c.manifests.map((m) => `seq ${m.seq}, file ${m.sha256.slice(0, 12)}`).join('; ')}). `,
        c.outcome === 'conflicted'
          ? 'They name different files: the version is refused on every node. Publish the intended file as a new version.'
          : 'Same file: the lowest seq counts, the others are ignored.',
      ),
    ),
    ...(rollout.errors ?? [])
      .filter((e) => e.code !== 'ERR_RELEASE_CONFLICT')
      .map((e) =>
        h(
          'li',
          { 'data-problem': 'release-error', 'data-release': `${e.model}@${e.version}` },
          h('span', { class: 'pill bad' }, e.code),
          ` ${e.model}@${e.version} cannot be evaluated (${e.count}×): ${e.message}. Other releases go on.`,
        ),
      ),
    ...(loops?.failing ?? []).map((f) =>
      h(
        'li',
        { 'data-problem': 'loop-error', 'data-loop': f.loop },
        h('span', { class: 'pill warn' }, f.loop),
        ` ${f.item}: ${f.code} ${f.message} (${f.count}×). The loop goes on with the other items.`,
      ),
    ),
  ]
  if (items.length === 0) return null
  return h('div', { class: 'card problems' }, h('h3', {}, 'Needs attention'), h('ul', {}, items))
}
