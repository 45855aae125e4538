import { isoTimestamp, pgArray } from '../db/sql.js';
import { invalid } from '../domain/errors.js';
import { encodePageToken, pageSize, requireUuid, type Page, type UseCaseContext } from './context.js';
import { findDevice } from './devices.js';

export interface LogEntry {
  id: number;
  deviceUuid: string;
  line: string;
  logTime: Date;
  receiveTime: Date;
}

/** Most lines one IngestLogs call may carry. */
export const MAX_LINES_PER_CALL = 1000;
/** Bytes of UTF-8 one line may hold. */
export const MAX_LINE_BYTES = 16_384;

/**
 * IngestLogs: stores lines in the order given, in one statement. Errors: invalid (too many lines,
 * a line too long or containing NUL), not_found (device).
 */
export async function ingestLogs(ctx: UseCaseContext, deviceUuid: string, lines: { line: string; logTime?: Date }[]): Promise<number> {
  if (lines.length > MAX_LINES_PER_CALL) throw invalid('lines', `at most ${MAX_LINES_PER_CALL} per call`);
  lines.forEach((l, i) => {
    if (Buffer.byteLength(l.line) > MAX_LINE_BYTES) throw invalid(`lines[${i}].line`, `longer than ${MAX_LINE_BYTES} bytes`);
    // PostgreSQL text cannot hold NUL.
    if (l.line.includes('\u0000')) throw invalid(`lines[${i}].line`, 'contains a NUL character');
  });
  const device = await findDevice(ctx, deviceUuid, 'device_uuid');
  if (lines.length === 0) return 0;
  await ctx.em.execute(
    `insert into log_entries (device_uuid, line, log_time, receive_time)
       select ?, line, coalesce(log_time, ?), ? from unnest(?::text[], ?::timestamptz[]) with ordinality u(line, log_time, n)
       order by n`,
    [device.uuid, ctx.now, ctx.now, pgArray(lines.map((l) => l.line)), pgArray(lines.map((l) => l.logTime ?? null))],
  );
  return lines.length;
}

export interface LogQuery {
  pageSize: number;
  pageToken: string;
  /** Plain substring (no pattern syntax): matched with strpos, never a shell or LIKE pattern. */
  contains: string;
  deviceUuid?: string;
  startTime?: Date;
  endTime?: Date;
}

/** ListLogs oldest first (log_time, then arrival). Errors: invalid (page_token, range, device_uuid). */
export async function listLogs(ctx: UseCaseContext, q: LogQuery): Promise<Page<LogEntry>> {
  const size = pageSize(q.pageSize);
  const after = decodeLogToken(q.pageToken);
  if (q.startTime && q.endTime && q.startTime >= q.endTime) throw invalid('end_time', 'must be after start_time');
  const filter = new Filter()
    .add(q.contains !== '', 'strpos(line, ?) > 0', q.contains)
    .add(q.deviceUuid !== undefined, 'device_uuid = ?', () => requireUuid('device_uuid', q.deviceUuid))
    .add(q.startTime !== undefined, 'log_time >= ?', q.startTime)
    .add(q.endTime !== undefined, 'log_time < ?', q.endTime)
    .add(after !== undefined, '(log_time, id) > (?, ?)', after?.logTime, after?.id);
  const rows: { id: string; device_uuid: string; line: string; log_time: string; receive_time: string }[] = await ctx.em.execute(
    `select id, device_uuid, line, ${isoTimestamp('log_time')}, ${isoTimestamp('receive_time')} from log_entries
      ${filter.sql()} order by log_entries.log_time, log_entries.id limit ?`,
    [...filter.params, size + 1],
  );
  const items = rows.slice(0, size).map((r) => ({
    id: Number(r.id),
    deviceUuid: r.device_uuid,
    line: r.line,
    logTime: new Date(r.log_time),
    receiveTime: new Date(r.receive_time),
  }));
  const last = items[items.length - 1];
  return {
    items,
    nextPageToken: rows.length > size && last ? encodePageToken(`${last.logTime.toISOString()}|${last.id}`) : '',
  };
}

/** ClearLogs: deletes matching lines (all when no filter); returns how many. */
export async function clearLogs(ctx: UseCaseContext, filter: { deviceUuid?: string; endTime?: Date }): Promise<number> {
  const where = new Filter()
    .add(filter.deviceUuid !== undefined, 'device_uuid = ?', () => requireUuid('device_uuid', filter.deviceUuid))
    .add(filter.endTime !== undefined, 'log_time < ?', filter.endTime);
  const rows: { n: string }[] = await ctx.em.execute(
    `with gone as (delete from log_entries ${where.sql()} returning 1)
     select count(*) as n from gone`,
    where.params,
  );
  return Number(rows[0]?.n ?? 0);
}

function decodeLogToken(token: string): { logTime: Date; id: number } | undefined {
  if (!token) return undefined;
  const [time, id] = Buffer.from(token, 'base64url').toString('utf8').split('|');
  const logTime = new Date(time ?? '');
  if (Number.isNaN(logTime.getTime()) || !/^\d+$/.test(id ?? '')) throw invalid('page_token', 'is not a token this list returned');
  return { logTime, id: Number(id) };
}

/** A WHERE clause built from optional conditions, with their bindings in order. */
class Filter {
  private readonly conditions: string[] = [];
  readonly params: unknown[] = [];

  /** Adds `condition` when `when`; a function param is evaluated only then (it may validate). */
  add(when: boolean, condition: string, ...params: unknown[]): this {
    if (!when) return this;
    this.conditions.push(condition);
    this.params.push(...params.map((p) => (typeof p === 'function' ? (p as () => unknown)() : p)));
    return this;
  }

  sql(): string {
    return this.conditions.length ? `where ${this.conditions.join(' and ')}` : '';
  }
}
