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
const TERMINAL_CONTROLS_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `\uXXXX` for one character: valid in JSON, inert in a terminal. */
const escapeControl = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * The proto3 JSON of `message` (field names as in the proto JSON mapping), pretty-printed, with
 * every TERMINAL_CONTROLS character escaped (JSON.stringify leaves DEL, C1 and bidi ones raw).
 */
export function renderJson<T>(type: MessageType<T>, message: T): string {
  return prettyJson(jsonWithDefaults(type, message));
}

/** `value` as indented JSON, with every TERMINAL_CONTROLS character escaped. */
export function prettyJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(TERMINAL_CONTROLS_IN_JSON, escapeControl);
}

/**
 * The proto3 JSON of `message` with its first-level fields at their defaults written out too
 * (the JSON mapping's "emit default values" option): an empty list reads `"devices": []`, not `{}`,
 * a false flag `false`, an empty string `""`. Numbers at zero only with `counts` (a message whose
 * numbers are all counts, such as the fleet summary): an enum is a number here too, and its zero
 * would read `0` where its JSON is a name.
 */
export function jsonWithDefaults<T>(type: MessageType<T>, message: T, counts = false): Record<string, unknown> {
  const json = type.toJSON(message) as Record<string, unknown>;
  const defaults = type.create() as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(defaults)) {
    const value = json[key] ?? (typeof defaults[key] === 'number' && !counts ? undefined : defaults[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** How a table shows one column: from the field's JSON value and its value in the message. */
export type CellFormat = (json: unknown, native: unknown) => string;

/** A Timestamp that stands for a day (a birth date): `YYYY-MM-DD`. */
export const dateOnly: CellFormat = (_json, native) => (native instanceof Date ? native.toISOString().slice(0, 10) : '');

const isScalar = (v: unknown): boolean => v === undefined || v instanceof Date || typeof v !== 'object';

/**
 * A plain-text table of `items`, one row each. Columns are the first-level scalar fields of `type`
 * (lists and nested messages are left to the JSON output), headed by their JSON names. Cells hold
 * the JSON value, or the field's default when proto3 JSON omits it (false, 0), so a false flag
 * reads `false` rather than blank; `formats` shows a column its own way (a status code by name, a
 * birth date as a day). Newlines are shown as `\n`, every other TERMINAL_CONTROLS character as
 * `\uXXXX`, and long cells are cut with `…`.
 * Returns '' when the type has no scalar fields (e.g. google.protobuf.Empty).
 */
export function renderTable<T>(type: MessageType<T>, items: readonly T[], formats: Readonly<Record<string, CellFormat>> = {}): string {
  const defaults = type.create() as Record<string, unknown>;
  const natives = items as readonly Record<string, unknown>[];
  const columns = Object.keys(defaults).filter((key) => isScalar(defaults[key]) && natives.every((n) => isScalar(n[key])));
  if (columns.length === 0) return '';
  const rows = items.map((item, i) => {
    const json = type.toJSON(item) as Record<string, unknown>;
    return columns.map((key) => {
      const format = formats[key];
      return format ? cell(format(json[key], natives[i]?.[key])) : cell(json[key] ?? natives[i]?.[key]);
    });
  });
  return alignRows([columns, ...rows]);
}

/** Rows of cells (the first one the header) as columns two spaces apart, each as wide as its widest cell. */
export function alignRows(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length)));
  return rows.map((row) => row.map((v, c) => v.padEnd(widths[c] ?? 0)).join('  ').trimEnd()).join('\n');
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = (value instanceof Date ? value.toISOString() : String(value)).replace(/\n/g, '\\n').replace(TERMINAL_CONTROLS, escapeControl);
  return text.length > MAX_CELL ? `${text.slice(0, MAX_CELL - 1)}…` : text;
}

/**
 * Prints `render()` every `everyMs` until it returns `done` or Ctrl-C: on a terminal redrawn in
 * place under the time, otherwise appended, one report per refresh (the `watch` verbs).
 */
export async function refreshUntil(everyMs: number, render: () => Promise<{ text: string; done: boolean }>): Promise<void> {
  const stop = new AbortController();
  const abort = (): void => stop.abort();
  process.once('SIGINT', abort);
  try {
    while (!stop.signal.aborted) {
      const { text, done } = await render();
      process.stdout.write(process.stdout.isTTY ? `\x1b[H\x1b[2J${new Date().toISOString()}\n${text}\n` : `${text}\n`);
      if (done) break;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, everyMs);
        stop.signal.addEventListener('abort', () => (clearTimeout(timer), resolve(undefined)), { once: true });
      });
    }
  } finally {
    process.off('SIGINT', abort);
  }
}
