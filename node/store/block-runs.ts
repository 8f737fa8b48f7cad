/** Block-number helpers shared by the model store (delta reuse) and the fetcher (download order). */

/** Contiguous runs `[start, end)` of a list of block numbers (sorted and deduplicated first). */
export function blockRuns(blocks: readonly number[]): [number, number][] {
  const sorted = [...new Set(blocks)].sort((a, b) => a - b)
  const runs: [number, number][] = []
  for (const b of sorted) {
    const last = runs.at(-1)
    if (last !== undefined && last[1] === b) last[1] = b + 1
    else runs.push([b, b + 1])
  }
  return runs
}
