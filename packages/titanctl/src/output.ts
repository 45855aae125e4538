/** What output needs of a ts-proto message type: its defaults (every field, in proto order) and its JSON. */
export interface MessageType<T> {
  create(): T;
  toJSON(message: T): unknown;
}

/** Widest a table cell gets; the JSON output has the full value. */
const MAX_CELL = 60;

/**
 * Characters a terminal acts on instead of showing, which text from a daemon (log lines, titles)
 * may hold: C0 controls and DEL (ESC starts CSI and OSC sequences: clear the screen, set the title,
 * hyperlinks; CR and backspace overwrite a row), C1 controls, the bidirectional formatting
 * characters (U+202E shows text reversed) and the Unicode line and paragraph separators.
 */
const TERMINAL_CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** TERMINAL_CONTROLS but C0, which JSON.stringify already escapes inside strings (outside them, C0 is the layout). */
const CONTROLS_JSON_LEAVES = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `\uXXXX` for one character: valid in JSON, inert in a terminal. */
const escapeControl = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * The proto3 JSON of `message` (field names as in the proto JSON mapping), pretty-printed, with
 * every TERMINAL_CONTROLS character escaped (JSON.stringify leaves DEL, C1 and bidi ones raw).
 */
export function renderJson<T>(type: MessageType<T>, message: T): string {
  return JSON.stringify(type.toJSON(message), null, 2).replace(CONTROLS_JSON_LEAVES, escapeControl);
}

const isScalar = (v: unknown): boolean => v === undefined || v instanceof Date || typeof v !== 'object';

/**
 * A plain-text table of `items`, one row each. Columns are the first-level scalar fields of `type`
 * (lists and nested messages are left to the JSON output), headed by their JSON names. Cells hold
 * the JSON value, or the field's default when proto3 JSON omits it (false, 0), so a false flag
 * reads `false` rather than blank. Newlines are shown as `\n`, every other TERMINAL_CONTROLS
 * character as `\uXXXX`, and long cells are cut with `…`.
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
  const text = (value instanceof Date ? value.toISOString() : String(value)).replace(/\n/g, '\\n').replace(TERMINAL_CONTROLS, escapeControl);
  return text.length > MAX_CELL ? `${text.slice(0, MAX_CELL - 1)}…` : text;
}
