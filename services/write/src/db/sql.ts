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

/**
 * Selects a timestamptz column as ISO 8601 text, aliased to its own name. Raw queries through
 * MikroORM return timestamps as PostgreSQL's text form, which only lenient Date parsing accepts;
 * ISO 8601 is parsed exactly (`new Date(row[column])`). The alias shadows the column in ORDER BY,
 * so order by the qualified column (`t.column`).
 */
export const isoTimestamp = (column: string): string => `to_json(${column}) #>> '{}' as ${column}`;
