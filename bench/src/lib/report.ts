/** One row of a benchmark's table: a name and its figures (numbers already rounded). */
export type Row = Record<string, string | number>;

/** Prints `rows` as an aligned table under `title`. */
export function printTable(title: string, rows: readonly Row[]): void {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const width = (c: string): number => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length));
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(width(columns[i]!))).join('  ').trimEnd();
  process.stdout.write(`\n${title}\n${line(columns)}\n${line(columns.map((c) => '-'.repeat(width(c))))}\n`);
  for (const r of rows) process.stdout.write(`${line(columns.map((c) => String(r[c] ?? '')))}\n`);
}

/** The one machine-readable line per benchmark: `{"benchmark": name, ...figures}`. */
export function printJson(benchmark: string, figures: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ benchmark, ...figures })}\n`);
}
