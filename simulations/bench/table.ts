/** One line of a benchmark table; `--json` prints the same rows. */
export interface BenchRow {
  name: string
  mbPerS: number
  peakRssMb: number | null
  [figure: string]: string | number | null
}

/** Prints rows as an aligned text table with the given columns (name first). */
export function formatTable (rows: BenchRow[], columns: string[]): string {
  const cell = (v: unknown): string => v === null || v === undefined ? '-' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v)
  const head = ['name', ...columns]
  const body = rows.map((r) => [r.name, ...columns.map((c) => cell(r[c]))])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n')
}
