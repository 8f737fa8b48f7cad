/**
 * cli/table.ts: columns aligned to their widest cell with upper-case headers, empty cells as `-`,
 * control characters from the network (newlines, ANSI escapes) shown as `?`, long cells cut.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { cell, TABLE_CELL_MAX, table } from '../../cli/table.ts'
import { parseTable } from '../helpers/index.ts'

test('columns line up under their headers; the last column is not padded', () => {
  const out = table(
    ['device', 'state', 'note'],
    [
      ['12D3KooWshort', 'enrolled', ''],
      ['a', 'pending pinned', 'revoked: lost'],
    ],
  )
  const lines = out.split('\n')
  assert.deepEqual(lines, [
    'DEVICE         STATE           NOTE',
    '12D3KooWshort  enrolled        -',
    'a              pending pinned  revoked: lost',
  ])
  // every column starts at the same offset on every line
  for (const word of ['STATE', 'NOTE']) {
    const at = lines[0].indexOf(word)
    for (const l of lines.slice(1)) assert.notEqual(l[at - 1], undefined)
    assert.equal(lines[1][at - 2], ' ')
    assert.equal(lines[2][at - 2], ' ')
  }
})

test('network text cannot break a row or drive the terminal', () => {
  const out = table(['name', 'tags'], [['evil\n12D3KooWfake  enrolled', '\u001b[31mred\u001b[0m']])
  assert.equal(out.split('\n').length, 2, out)
  assert.ok(!out.includes('\u001b'))
  assert.match(out, /evil\?12D3KooWfake {2}enrolled {2}\?\[31mred\?\[0m$/m)
})

test('cells are cut at TABLE_CELL_MAX; null, undefined and empty print as -', () => {
  const long = cell('x'.repeat(TABLE_CELL_MAX * 2))
  assert.equal(long.length, TABLE_CELL_MAX)
  assert.ok(long.endsWith('…'))
  assert.equal(cell(null), '-')
  assert.equal(cell(undefined), '-')
  assert.equal(cell(''), '-')
  assert.equal(cell(0), '0')
})

test('test/helpers parseTable reads a table back by header', () => {
  const rows = parseTable(
    `some title line\n${table(
      ['device', 'last report', 'note'],
      [
        ['d1', '3s ago', ''],
        ['d22', '-', 'revoked: lost key'],
      ],
    )}`,
  )
  assert.deepEqual(rows, [
    { device: 'd1', 'last report': '3s ago', note: '' },
    { device: 'd22', 'last report': '', note: 'revoked: lost key' },
  ])
})
