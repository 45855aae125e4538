import type { Knex } from '@mikro-orm/postgresql';
import type { Em } from './orm.js';
import { isoTimestamp, pgArray } from './sql.js';

/** A stored daemon log line. */
export interface StoredLogLine {
  id: number;
  deviceUuid: string;
  line: string;
  logTime: Date;
  receiveTime: Date;
}

/** Which lines a query or a delete covers; every field optional (none = all lines). */
export interface LogFilter {
  /** Plain substring, matched with strpos (never a LIKE or shell pattern). */
  contains?: string;
  deviceUuid?: string;
  /** Inclusive lower bound of log_time. */
  startTime?: Date;
  /** Exclusive upper bound of log_time. */
  endTime?: Date;
  /** Keyset cursor: lines after this (log_time, id). */
  after?: { logTime: Date; id: number };
}

/** Appends `lines` for one device in the order given, in one statement; a line without a time takes `now`. */
export async function insertLogLines(em: Em, deviceUuid: string, lines: readonly { line: string; logTime?: Date }[], now: Date): Promise<void> {
  await em.execute(
    `insert into log_entries (device_uuid, line, log_time, receive_time)
       select ?, line, coalesce(log_time, ?), ? from unnest(?::text[], ?::timestamptz[]) with ordinality u(line, log_time, n)
       order by n`,
    [deviceUuid, now, now, pgArray(lines.map((l) => l.line)), pgArray(lines.map((l) => l.logTime ?? null))],
  );
}

/** Up to `limit` lines matching `filter`, oldest first (log_time, then arrival). */
export async function selectLogLines(em: Em, filter: LogFilter, limit: number): Promise<StoredLogLine[]> {
  const knex = em.getKnex();
  const query = where(knex('log_entries'), filter)
    .select('id', 'device_uuid', 'line', knex.raw(isoTimestamp('log_time')), knex.raw(isoTimestamp('receive_time')))
    .orderBy([{ column: 'log_entries.log_time' }, { column: 'log_entries.id' }])
    .limit(limit);
  const rows: { id: string; device_uuid: string; line: string; log_time: string; receive_time: string }[] = await em.execute(query);
  return rows.map((r) => ({ id: Number(r.id), deviceUuid: r.device_uuid, line: r.line, logTime: new Date(r.log_time), receiveTime: new Date(r.receive_time) }));
}

/** Deletes the lines matching `filter`; returns how many. */
export async function deleteLogLines(em: Em, filter: LogFilter): Promise<number> {
  const knex = em.getKnex();
  const deleted: unknown[] = await em.execute(where(knex('log_entries'), filter).delete().returning(knex.raw('1')));
  return deleted.length;
}

/** Deletes lines received before `before` (LOG_RETENTION). */
export async function pruneLogLines(em: Em, before: Date): Promise<void> {
  await em.execute('delete from log_entries where receive_time < ?', [before]);
}

function where(query: Knex.QueryBuilder, f: LogFilter): Knex.QueryBuilder {
  if (f.contains) query.whereRaw('strpos(line, ?) > 0', [f.contains]);
  if (f.deviceUuid !== undefined) query.where('device_uuid', f.deviceUuid);
  if (f.startTime !== undefined) query.where('log_time', '>=', f.startTime);
  if (f.endTime !== undefined) query.where('log_time', '<', f.endTime);
  if (f.after !== undefined) query.whereRaw('(log_time, id) > (?, ?)', [f.after.logTime, f.after.id]);
  return query;
}
