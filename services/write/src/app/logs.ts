import { deleteLogLines, insertLogLines, selectLogLines, type StoredLogLine } from '../db/log-store.js';
import { invalid } from '../domain/errors.js';
import { encodePageToken, pageSize, requireUuid, type Page, type UseCaseContext } from './context.js';
import { findDevice } from './devices.js';

export type LogEntry = StoredLogLine;

/** Most lines one IngestLogs call may carry. */
export const MAX_LINES_PER_CALL = 1000;
/**
 * IngestLogs: stores lines in the order given, in one statement. Each line's length and its
 * freedom from NUL were checked with the request (docs/architecture.md "Input limits").
 * Errors: invalid (too many lines), not_found (device).
 */
export async function ingestLogs(ctx: UseCaseContext, deviceUuid: string, lines: { line: string; logTime?: Date }[]): Promise<number> {
  if (lines.length > MAX_LINES_PER_CALL) throw invalid('lines', `at most ${MAX_LINES_PER_CALL} per call`);
  const device = await findDevice(ctx, deviceUuid, 'device_uuid');
  if (lines.length === 0) return 0;
  await insertLogLines(ctx.em, device.uuid, lines, ctx.now);
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
  const deviceUuid = q.deviceUuid === undefined ? undefined : requireUuid('device_uuid', q.deviceUuid);
  const rows = await selectLogLines(ctx.em, { contains: q.contains, deviceUuid, startTime: q.startTime, endTime: q.endTime, after }, size + 1);
  const items = rows.slice(0, size);
  const last = items[items.length - 1];
  return {
    items,
    nextPageToken: rows.length > size && last ? encodePageToken(`${last.logTime.toISOString()}|${last.id}`) : '',
  };
}

/** ClearLogs: deletes matching lines (all when no filter); returns how many. */
export async function clearLogs(ctx: UseCaseContext, filter: { deviceUuid?: string; endTime?: Date }): Promise<number> {
  const deviceUuid = filter.deviceUuid === undefined ? undefined : requireUuid('device_uuid', filter.deviceUuid);
  return deleteLogLines(ctx.em, { deviceUuid, endTime: filter.endTime });
}

function decodeLogToken(token: string): { logTime: Date; id: number } | undefined {
  if (!token) return undefined;
  const [time, id] = Buffer.from(token, 'base64url').toString('utf8').split('|');
  const logTime = new Date(time ?? '');
  if (Number.isNaN(logTime.getTime()) || !/^\d+$/.test(id ?? '')) throw invalid('page_token', 'is not a token this list returned');
  return { logTime, id: Number(id) };
}
