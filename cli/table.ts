/**
 * Aligned text tables for the CLI's human output (kubectl-style: upper-case headers, columns
 * padded to their widest cell, two spaces between, the last column never padded). Cells come
 * from the network (device names, tags, reasons): control characters (newlines, ANSI escapes)
 * are shown as `?` so a cell cannot break the table or drive the terminal, and each cell is cut
 * at TABLE_CELL_MAX characters with `…`. Widths count UTF-16 code units (no East Asian width).
 */

/** Characters a cell keeps at most. */
export const TABLE_CELL_MAX = 120

// C0 and C1 controls and DEL (ESC starts terminal escape sequences)
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g

/** A cell as printed: controls replaced, cut at TABLE_CELL_MAX. */
export function cell(v: string | number | null | undefined): string {
  const s = v === null || v === undefined || v === '' ? '-' : String(v).replace(CONTROL, '?')
  return s.length > TABLE_CELL_MAX ? `${s.slice(0, TABLE_CELL_MAX - 1)}…` : s
}

/** The table: a header row and the rows, aligned. */
export function table(head: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const all = [head.map((h) => cell(h).toUpperCase()), ...rows.map((r) => head.map((_, i) => cell(r[i])))]
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i].length)))
  return all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}
