/**
 * A PostgreSQL array literal for one `?::type[]` binding. Knex expands JS arrays in raw bindings
 * into comma lists, so arrays travel as text. Every element is quoted and escaped; Dates become
 * ISO strings; null becomes NULL.
 */
export function pgArray(values: readonly (string | number | Date | null)[]): string {
  const items = values.map((v) => {
    if (v === null) return 'NULL';
    const text = v instanceof Date ? v.toISOString() : String(v);
    return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  });
  return `{${items.join(',')}}`;
}
