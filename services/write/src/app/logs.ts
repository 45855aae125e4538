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
  /** AIP-132 order: '' or 'log_time' (oldest first), 'log_time desc' (newest first). */
  orderBy: string;
}

/** The orders ListLogs reads in, by `order_by`, each with the mark its page tokens carry. */
const ORDERS: Record<string, { newestFirst: boolean; mark: string }> = {
  '': { newestFirst: false, mark: 'a' },
  log_time: { newestFirst: false, mark: 'a' },
  'log_time desc': { newestFirst: true, mark: 'd' },
};

/** ListLogs oldest first (log_time, then arrival) or newest first. Errors: invalid (page_token, range, device_uuid, order_by). */
export async function listLogs(ctx: UseCaseContext, q: LogQuery): Promise<Page<LogEntry>> {
  const size = pageSize(q.pageSize);
  const order = ORDERS[q.orderBy.trim().replace(/\s+/g, ' ')];
  if (!order) throw invalid('order_by', 'must be "log_time" or "log_time desc"');
  const after = decodeLogToken(q.pageToken, order.mark);
  if (q.startTime && q.endTime && q.startTime >= q.endTime) throw invalid('end_time', 'must be after start_time');
  const deviceUuid = q.deviceUuid === undefined ? undefined : requireUuid('device_uuid', q.deviceUuid);
  const rows = await selectLogLines(ctx.em, { contains: q.contains, deviceUuid, startTime: q.startTime, endTime: q.endTime, after, newestFirst: order.newestFirst }, size + 1);
  const items = rows.slice(0, size);
  const last = items[items.length - 1];
  return {
    items,
    nextPageToken: rows.length > size && last ? encodePageToken(`${last.logTime.toISOString()}|${last.id}|${order.mark}`) : '',
  };
}

/** ClearLogs: deletes matching lines (all when no filter); returns how many. */
export async function clearLogs(ctx: UseCaseContext, filter: { deviceUuid?: string; endTime?: Date }): Promise<number> {
  const deviceUuid = filter.deviceUuid === undefined ? undefined : requireUuid('device_uuid', filter.deviceUuid);
  return deleteLogLines(ctx.em, { deviceUuid, endTime: filter.endTime });
}

/** A page token's cursor; it must have been returned for the same order (`mark`). */
function decodeLogToken(token: string, mark: string): { logTime: Date; id: number } | undefined {
  if (!token) return undefined;
  const [time, id, tokenMark] = Buffer.from(token, 'base64url').toString('utf8').split('|');
  const logTime = new Date(time ?? '');
  if (Number.isNaN(logTime.getTime()) || !/^\d+$/.test(id ?? '')) throw invalid('page_token', 'is not a token this list returned');
  if ((tokenMark ?? 'a') !== mark) throw invalid('page_token', 'was returned for another order_by');
  return { logTime, id: Number(id) };
}
