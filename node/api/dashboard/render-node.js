/**
 * This node's own panels of the dashboard (from its /status): identity, peers, inference and
 * replication figures, its models, and its downloads in progress. Pure DOM building with `h`.
 */
import { bytes, h } from './dom.js'

/** @typedef {import('./render.js').NodeInfo} NodeInfo */

/**
 * This node's downloads (the installer's per-model state).
 * @param {Record<string, any>} models
 */
export function renderDownloads(models) {
  const rows = Object.entries(models).filter(([, s]) => s.downloading)
  if (rows.length === 0) return [h('p', { class: 'muted' }, 'None on this node.')]
  return rows.map(([m, s]) =>
    h(
      'div',
      { class: 'download', 'data-download': `${m}@${s.downloading.version}` },
      `${m}@${s.downloading.version}: ${s.downloading.blocks_have} of ${s.downloading.blocks_total} blocks `,
      h('progress', { max: String(s.downloading.blocks_total || 1), value: String(s.downloading.blocks_have) }),
    ),
  )
}

/**
 * This node's own state from its /status.
 * @param {NodeInfo} node
 * @param {any} status
 */
export function renderSelf(node, status) {
  const models = Object.entries(status.models ?? {})
  const inf = status.inference
  const repl = status.replication
  return [
    h(
      'dl',
      {},
      h('dt', {}, 'id'),
      h('dd', { class: 'mono' }, node.id),
      h('dt', {}, 'role'),
      h('dd', {}, node.role, node.operator ? ' (holds the operator key)' : ''),
      h('dt', {}, 'fleet'),
      h('dd', {}, node.fleet),
      h('dt', {}, 'tags'),
      h('dd', {}, (status.device?.tags ?? []).join(', ') || '–'),
      h('dt', {}, 'peers'),
      h('dd', {}, String((status.peers ?? []).length)),
      h('dt', {}, 'messages held'),
      h('dd', {}, String(status.mesh?.messages ?? '–')),
      inf
        ? [
            h('dt', {}, 'inference'),
            h('dd', {}, `${inf.state}${inf.model ? ` · ${inf.model}@${inf.version}` : ''} · restarts ${inf.restarts}`),
          ]
        : null,
      repl
        ? [
            h('dt', {}, 'replication'),
            h(
              'dd',
              {},
              `in ${bytes(repl.bytesIn ?? 0)} · out ${bytes(repl.bytesOut ?? 0)} · refused blocks ${repl.invalidBlocks ?? 0}`,
            ),
          ]
        : null,
    ),
    models.length === 0
      ? h('p', { class: 'muted' }, 'No model on this node.')
      : h(
          'table',
          {},
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['model', 'active', 'previous', 'staged', 'note'].map((x) => h('th', {}, x)),
            ),
          ),
          h(
            'tbody',
            {},
            models.map(([m, s]) =>
              h(
                'tr',
                { 'data-model': m },
                h('td', {}, m),
                h('td', {}, s.active ?? 'none'),
                h('td', {}, s.previous ?? '–'),
                h('td', {}, (s.staged ?? []).join(', ') || '–'),
                h(
                  'td',
                  {},
                  s.deactivated ? `deactivated ${s.deactivated.version}: ${s.deactivated.reason}` : '',
                  (s.refused ?? []).map((/** @type {any} */ x) => ` refused ${x.version}: ${x.code}`),
                ),
              ),
            ),
          ),
        ),
  ]
}
