/** What output needs of a ts-proto message type: its defaults (every field, in proto order) and its JSON. */
export interface MessageType<T> {
  create(): T;
  toJSON(message: T): unknown;
}

/** Widest a table cell gets; the JSON output has the full value. */
const MAX_CELL = 60;

/** The proto3 JSON of `message` (field names as in the proto JSON mapping), pretty-printed. */
export function renderJson<T>(type: MessageType<T>, message: T): string {
  return JSON.stringify(type.toJSON(message), null, 2);
}

const isScalar = (v: unknown): boolean => v === undefined || v instanceof Date || typeof v !== 'object';

/**
 * A plain-text table of `items`, one row each. Columns are the first-level scalar fields of `type`
 * (lists and nested messages are left to the JSON output), headed by their JSON names. Cells hold
 * the JSON value, or the field's default when proto3 JSON omits it (false, 0), so a false flag
 * reads `false` rather than blank. Newlines are shown as `\n` and long cells are cut with `…`.
 * Returns '' when the type has no scalar fields (e.g. google.protobuf.Empty).
 */
export function renderTable<T>(type: MessageType<T>, items: readonly T[]): string {
  const defaults = type.create() as Record<string, unknown>;
  const natives = items as readonly Record<string, unknown>[];
  const columns = Object.keys(defaults).filter((key) => isScalar(defaults[key]) && natives.every((n) => isScalar(n[key])));
  if (columns.length === 0) return '';
  const rows = items.map((item, i) => {
    const json = type.toJSON(item) as Record<string, unknown>;
    return columns.map((key) => cell(json[key] ?? natives[i]?.[key]));
  });
  const table = [columns, ...rows];
  const widths = columns.map((_, c) => Math.max(...table.map((row) => (row[c] ?? '').length)));
  return table.map((row) => row.map((v, c) => v.padEnd(widths[c] ?? 0)).join('  ').trimEnd()).join('\n');
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = (value instanceof Date ? value.toISOString() : String(value)).replace(/\r?\n/g, '\\n');
  return text.length > MAX_CELL ? `${text.slice(0, MAX_CELL - 1)}…` : text;
}
