import { flag, int, switchFlag, text, UsageError, type Flag, type Values } from './args.js';
import type { AdminApi, Method } from './client.js';
import { renderJson, renderTable, type CellFormat, type MessageType } from './output.js';

/** What a command prints: `out` on stdout, `note` (e.g. where the next page starts) on stderr. */
export interface Output {
  out: string;
  note?: string;
}

/** One `titanctl <resource> <verb>`: its flags, and how it turns them into RPCs and output. */
export interface Command {
  verb: string;
  summary: string;
  flags: readonly Flag<unknown>[];
  /** The flag a lone positional argument fills, e.g. `devices get <uuid>`. */
  positional?: Flag<unknown>;
  /** Rejects with a ServiceError when a call fails, UsageError when the flags do not make a request. */
  run(api: AdminApi, values: Values, table: boolean): Promise<Output>;
}

/** A resource and its verbs, e.g. `devices`. */
export interface Resource {
  name: string;
  summary: string;
  commands: readonly Command[];
}

interface Spec<Req, Res> {
  verb: string;
  summary: string;
  flags: readonly Flag<unknown>[];
  positional?: Flag<unknown>;
  method: Method<Req, Res>;
  response: MessageType<Res>;
  /** Longer than the 10 s default for calls whose work grows with the data. */
  deadlineMs?: number;
  /** How the table shows some columns (output.ts `renderTable`). */
  cells?: Readonly<Record<string, CellFormat>>;
}

/** A command making one call: the request from the flags, the response printed whole. */
export function unary<Req, Res>(spec: Spec<Req, Res> & { request(v: Values): Req }): Command {
  return {
    verb: spec.verb,
    summary: spec.summary,
    flags: spec.flags,
    positional: spec.positional,
    async run(api, values, table) {
      const res = await api.call(spec.method, spec.request(values), spec.deadlineMs);
      return { out: table ? renderTable(spec.response, [res], spec.cells) : renderJson(spec.response, res) };
    },
  };
}

export const ETAG = flag('etag', text, 'fail with ABORTED unless the resource still has this etag');
export const CLEAR = flag('clear', { metavar: 'FIELD', parse: (raw) => raw }, 'leave this optional field unset (repeatable)', { repeat: true });

/**
 * The update_mask for an update verb: the `path` of every field flag given, plus each `--clear`
 * field (named by flag or path), whose value the request leaves unset so the server clears it.
 * Throws UsageError for a field both set and cleared, a field that cannot be cleared, or nothing
 * to update (an empty mask would be INVALID_ARGUMENT anyway, with a less helpful message).
 */
export function updateMask(values: Values, flags: readonly Flag<unknown>[]): string[] {
  const mask = flags.filter((f) => f.path !== undefined && values.has(f)).map((f) => f.path as string);
  const clearable = flags.filter((f) => f.clearable);
  for (const name of values.all(CLEAR)) {
    const f = clearable.find((c) => c.name === name || c.path === name.replace(/-/g, '_'));
    if (!f) throw new UsageError(`--clear ${name}: clearable here: ${clearable.map((c) => c.name).join(', ') || 'nothing'}`);
    if (values.has(f)) throw new UsageError(`--${f.name} given and cleared`);
    mask.push(f.path as string);
  }
  if (mask.length === 0) throw new UsageError('nothing to update: give at least one field flag or --clear');
  return mask;
}

/**
 * An update verb: `request` gets the update_mask built by `updateMask` from the flags given;
 * --etag and, when some field is clearable, --clear are added to `flags`.
 */
export function update<Req, Res>(spec: Spec<Req, Res> & { request(v: Values, updateMask: string[]): Req }): Command {
  const clearable = spec.flags.filter((f) => f.clearable).map((f) => f.name);
  const clear = { ...CLEAR, help: `${CLEAR.help}: ${clearable.join(', ')}` };
  const flags = [...spec.flags, ETAG, ...(clearable.length > 0 ? [clear] : [])];
  return unary({ ...spec, flags, request: (v) => spec.request(v, updateMask(v, spec.flags)) });
}

const PAGE_SIZE = flag('page-size', int, 'items per page (1..1000, server default 100)');
const PAGE_TOKEN = flag('page-token', text, 'continue from a previous page');
const ALL = switchFlag('all', 'follow next_page_token and print every page as one list');

/**
 * A List verb; --page-size, --page-token and --all are added to `flags`. `field` names the
 * repeated field holding the items. With --all every page is fetched and printed as one response
 * whose `field` holds all items; otherwise one page, and in table mode the next page token goes to
 * stderr (JSON output carries it as nextPageToken).
 */
export function list<
  Req extends { pageSize: number; pageToken: string },
  Item,
  K extends string,
  Res extends { nextPageToken: string } & Record<K, Item[]>,
>(spec: Spec<Req, Res> & { request(v: Values): Req; field: K; item: MessageType<Item> }): Command {
  return {
    verb: spec.verb,
    summary: spec.summary,
    flags: [...spec.flags, PAGE_SIZE, PAGE_TOKEN, ALL],
    positional: spec.positional,
    async run(api, values, table) {
      const request: Req = { ...spec.request(values), pageSize: values.get(PAGE_SIZE) ?? 0, pageToken: values.get(PAGE_TOKEN) ?? '' };
      let res = await api.call(spec.method, request, spec.deadlineMs);
      if (values.get(ALL)) {
        const items = [...res[spec.field]];
        while (res.nextPageToken) {
          res = await api.call(spec.method, { ...request, pageToken: res.nextPageToken }, spec.deadlineMs);
          items.push(...res[spec.field]);
        }
        res = { ...res, [spec.field]: items };
      }
      if (!table) return { out: renderJson(spec.response, res) };
      return {
        out: renderTable(spec.item, res[spec.field], spec.cells),
        note: res.nextPageToken ? `more: --page-token ${res.nextPageToken} (or --all)` : undefined,
      };
    },
  };
}
