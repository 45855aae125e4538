import { deleteLogLines, selectLogLines, type StoredLogLine } from '../db/log-store.js';
import { invalid } from '../domain/errors.js';
import { encodePageToken, pageSize, requireUuid, type Page, type UseCaseContext } from './context.js';

export type LogEntry = StoredLogLine;

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
