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
  /** Keyset cursor: lines after this (log_time, id) in the order read. */
  after?: { logTime: Date; id: number };
  /** Read newest first: `after` then means older than. */
  newestFirst?: boolean;
}

/** One IngestLogs call in a batch. */
export interface LogSubmission {
  deviceUuid: string;
  lines: readonly { line: string; logTime?: Date }[];
  /** AIP-155 request_id (a UUID), or '' for none. */
  requestId: string;
}

/** How long before its receipt a line's own time is believed: a daemon keeps lines while its replica is away. */
export const LOG_TIME_MAX_AGE_MS = 24 * 3_600_000;
/** How far after its receipt a line's own time is believed: the daemon's clock running ahead. */
export const LOG_TIME_MAX_AHEAD_MS = 5 * 60_000;

/**
 * The time a line is stored and listed under: the daemon's `logTime` when it lies within
 * [receipt − LOG_TIME_MAX_AGE_MS, receipt + LOG_TIME_MAX_AHEAD_MS], else the receipt time `now`:
 * a daemon whose clock is wrong (or lies) cannot file lines where no operator looks for them.
 */
export function boundedLogTime(logTime: Date | undefined, now: Date): Date {
  if (logTime === undefined) return now;
  const offsetMs = logTime.getTime() - now.getTime();
  return offsetMs >= -LOG_TIME_MAX_AGE_MS && offsetMs <= LOG_TIME_MAX_AHEAD_MS ? logTime : now;
}

/**
 * Stores a batch of IngestLogs calls in the caller's transaction, each at most once by request_id,
 * received at `now` (each line's time bounded by `boundedLogTime`), and returns each call's answer (lines accepted): its own count when its lines
 * are stored now, the first call's when its request_id was stored before (AIP-155). Claiming a
 * request_id (`on conflict do nothing`) waits for a concurrent claimer to commit, so two write
 * replicas never both store one request. Lines go in with one statement, in call then line order.
 */
export async function insertLogBatch(em: Em, batch: readonly LogSubmission[], now: Date): Promise<number[]> {
  // Within the batch, the first call with a request_id claims it; later ones repeat it.
  const firstWithId = new Map<string, number>();
  batch.forEach((s, i) => {
    if (s.requestId && !firstWithId.has(s.requestId)) firstWithId.set(s.requestId, i);
  });
  const claimants = [...firstWithId.values()];
  const claimed = new Set<string>();
  if (claimants.length > 0) {
    const rows: { request_id: string }[] = await em.execute(
      `insert into log_requests (request_id, accepted_count, receive_time)
         select r, c, ? from unnest(?::uuid[], ?::int[]) u(r, c)
         on conflict do nothing returning request_id`,
      [now, pgArray(claimants.map((i) => batch[i]!.requestId)), pgArray(claimants.map((i) => batch[i]!.lines.length))],
    );
    for (const r of rows) claimed.add(r.request_id);
  }
  const earlier = [...firstWithId.keys()].filter((id) => !claimed.has(id));
  const answered = new Map<string, number>();
  if (earlier.length > 0) {
    const rows: { request_id: string; accepted_count: number }[] = await em.execute('select request_id, accepted_count from log_requests where request_id = any(?::uuid[])', [pgArray(earlier)]);
    for (const r of rows) answered.set(r.request_id, r.accepted_count);
  }
  const stored = batch.filter((s, i) => !s.requestId || (claimed.has(s.requestId) && firstWithId.get(s.requestId) === i));
  const lines = stored.flatMap((s) => s.lines.map((l) => ({ deviceUuid: s.deviceUuid, line: l.line, logTime: boundedLogTime(l.logTime, now) })));
  if (lines.length > 0) {
    await em.execute(
      `insert into log_entries (device_uuid, line, log_time, receive_time)
         select d, l, t, ? from unnest(?::uuid[], ?::text[], ?::timestamptz[]) with ordinality u(d, l, t, n)
         order by n`,
      [now, pgArray(lines.map((l) => l.deviceUuid)), pgArray(lines.map((l) => l.line)), pgArray(lines.map((l) => l.logTime))],
    );
  }
  return batch.map((s) => (!s.requestId ? s.lines.length : (answered.get(s.requestId) ?? s.lines.length)));
}

/** Which of `uuids` are devices. */
export async function existingDevices(em: Em, uuids: readonly string[]): Promise<Set<string>> {
  const rows: { uuid: string }[] = await em.execute('select uuid from devices where uuid = any(?::uuid[])', [pgArray([...uuids])]);
  return new Set(rows.map((r) => r.uuid));
}

/** Up to `limit` lines matching `filter`, oldest first (log_time, then arrival) or newest first. */
export async function selectLogLines(em: Em, filter: LogFilter, limit: number): Promise<StoredLogLine[]> {
  const knex = em.getKnex();
  const query = where(knex('log_entries'), filter)
    .select('id', 'device_uuid', 'line', knex.raw(isoTimestamp('log_time')), knex.raw(isoTimestamp('receive_time')))
    .orderBy(['log_entries.log_time', 'log_entries.id'].map((column) => ({ column, order: filter.newestFirst ? 'desc' : 'asc' })))
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

/** `log_entries_pYYYYMMDD`: the partition of one UTC day of receive_time. */
const partitionName = (dayStartMs: number): string => `log_entries_p${new Date(dayStartMs).toISOString().slice(0, 10).replace(/-/g, '')}`;
const DAY_MS = 86_400_000;

/**
 * Creates the day partitions of `log_entries` from the UTC day of `from` for `days` days, where
 * missing. A day whose lines already sit in the default partition (a clock far ahead, or a gap in
 * housekeeping) keeps them there: PostgreSQL refuses that partition, and retention deletes those
 * lines row by row. Returns the days it could not create.
 */
export async function ensureLogPartitions(em: Em, from: Date, days: number): Promise<string[]> {
  const skipped: string[] = [];
  const first = Math.floor(from.getTime() / DAY_MS) * DAY_MS;
  for (let d = 0; d < days; d++) {
    const start = first + d * DAY_MS;
    const name = partitionName(start);
    try {
      await em.execute(
        `create table if not exists ${name} partition of log_entries for values from ('${new Date(start).toISOString()}') to ('${new Date(start + DAY_MS).toISOString()}')`,
      );
    } catch (err) {
      // 23514: rows for that day are in the default partition.
      if ((err as { code?: string }).code !== '23514') throw err;
      skipped.push(name);
    }
  }
  return skipped;
}

/**
 * LOG_RETENTION: drops the day partitions that end at or before `before`, then deletes the older
 * lines left elsewhere (the partition `before` falls in, the default partition). Returns the
 * partitions dropped.
 */
export async function pruneLogLines(em: Em, before: Date): Promise<string[]> {
  const partitions: { name: string }[] = await em.execute(
    `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
       where i.inhparent = 'log_entries'::regclass and c.relname ~ '^log_entries_p[0-9]{8}$'`,
  );
  const dropped = partitions
    .map((p) => p.name)
    .filter((name) => {
      const day = name.slice('log_entries_p'.length);
      const start = Date.UTC(Number(day.slice(0, 4)), Number(day.slice(4, 6)) - 1, Number(day.slice(6, 8)));
      return start + DAY_MS <= before.getTime();
    });
  for (const name of dropped) await em.execute(`drop table if exists ${name}`);
  await em.execute('delete from log_entries where receive_time < ?', [before]);
  return dropped;
}

/** Forgets IngestLogs request_ids received before `before` (a retry after that stores again). */
export async function pruneLogRequests(em: Em, before: Date): Promise<void> {
  await em.execute('delete from log_requests where receive_time < ?', [before]);
}

function where(query: Knex.QueryBuilder, f: LogFilter): Knex.QueryBuilder {
  if (f.contains) query.whereRaw('strpos(line, ?) > 0', [f.contains]);
  if (f.deviceUuid !== undefined) query.where('device_uuid', f.deviceUuid);
  if (f.startTime !== undefined) query.where('log_time', '>=', f.startTime);
  if (f.endTime !== undefined) query.where('log_time', '<', f.endTime);
  if (f.after !== undefined) query.whereRaw(`(log_time, id) ${f.newestFirst ? '<' : '>'} (?, ?)`, [f.after.logTime, f.after.id]);
  return query;
}
