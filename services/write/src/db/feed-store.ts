import { EventEmitter } from 'node:events';
import { IsolationLevel } from '@mikro-orm/core';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Em } from './orm.js';
import { isoTimestamp } from './sql.js';
import { takeWriteLock } from './write-lock.js';

/** Tables on the change feed, parents before children: the order a snapshot is applied in. */
export const FED_TABLES = [
  'legions',
  'accounts',
  'devices',
  'device_accounts',
  'sshes',
  'habits',
  'dots',
  'colors',
  'pixels',
  'habit_pixels',
  'shapes',
  'habit_shapes',
  'empire_dates',
  'daemon_tokens',
  'rollouts',
  'rollout_habits',
  'rollout_habit_pixels',
  'rollout_habit_shapes',
] as const;

/** Columns a snapshot sends, matching the feed triggers' allow-lists (migration 0002). */
const SNAPSHOT_COLUMNS: Partial<Record<(typeof FED_TABLES)[number], string[]>> = {
  daemon_tokens: ['uuid', 'device_uuid', 'token_hash', 'prefix', 'create_time', 'expire_time', 'revoke_time', 'kind'],
  rollouts: ['uuid', 'state', 'account_logical_id', 'steps', 'current_step'],
};

export interface FeedState {
  epoch: string;
  headRevision: number;
  /** Lowest revision still stored; head + 1 when none is. */
  retainedFrom: number;
}

export interface StoredEvent {
  revision: number;
  table: string;
  operation: 'upsert' | 'delete';
  row: Record<string, unknown>;
  commitTime: Date;
  /** Whether the next revision belongs to the same write transaction. */
  transactionContinues: boolean;
  /** W3C traceparent of the call that wrote it; '' when tracing was off. */
  traceparent: string;
}

export async function readFeedState(em: Em): Promise<FeedState> {
  const rows: { epoch: string; head_revision: string; retained_from: string }[] = await em.execute(
    'select epoch, head_revision, retained_from from feed_state',
  );
  const row = rows[0]!;
  return { epoch: row.epoch, headRevision: Number(row.head_revision), retainedFrom: Number(row.retained_from) };
}

/**
 * Up to `limit` events with revision > `after`, in revision order, each knowing whether its
 * transaction continues with the next revision. One more row is read to tell for the last one; when
 * there is none, the last event ends its transaction (a transaction's events become visible
 * together, at its commit).
 */
export async function readEvents(em: Em, after: number, limit: number): Promise<StoredEvent[]> {
  const rows: { revision: string; table_name: string; operation: 'upsert' | 'delete'; row: Record<string, unknown>; commit_time: string; txid: string | null; traceparent: string | null }[] =
    await em.execute(
      `select revision, table_name, operation, row, ${isoTimestamp('commit_time')}, txid::text as txid, traceparent
        from feed_events where revision > ? order by revision limit ?`,
      [after, limit + 1],
    );
  return rows.slice(0, limit).map((r, i) => {
    const next = rows[i + 1];
    return {
      revision: Number(r.revision),
      table: r.table_name,
      operation: r.operation,
      row: r.row,
      commitTime: new Date(r.commit_time),
      transactionContinues: r.txid !== null && next?.txid === r.txid,
      traceparent: r.traceparent ?? '',
    };
  });
}

/**
 * Calls `onTable` with pages of at most `pageRows` rows of every fed table (until it returns
 * false: the caller went away), all read in one
 * REPEATABLE READ, read-only transaction together with the head revision, so the rows are
 * exactly the state after that revision. Rows are rendered by to_jsonb, like feed events.
 */
export async function readSnapshot(
  em: Em,
  pageRows: number,
  onHeader: (state: FeedState) => Promise<void>,
  onTable: (table: string, rows: Record<string, unknown>[]) => Promise<boolean>,
): Promise<void> {
  await em.transactional(
    async (tx) => {
      await onHeader(await readFeedState(tx));
      for (const table of FED_TABLES) {
        const columns = SNAPSHOT_COLUMNS[table];
        const project = columns ? `jsonb_build_object(${columns.map((c) => `'${c}', t.${c}`).join(', ')})` : 'to_jsonb(t)';
        // A cursor pages through the table inside the snapshot without re-scanning.
        await tx.execute(`declare snapshot_rows no scroll cursor for select ${project} as doc from ${table} t`);
        for (;;) {
          const rows: { doc: Record<string, unknown> }[] = await tx.execute(`fetch ${pageRows} from snapshot_rows`);
          if (rows.length === 0) break;
          if (!(await onTable(table, rows.map((r) => r.doc)))) return;
        }
        await tx.execute('close snapshot_rows');
      }
    },
    { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
  );
}

/**
 * Deletes events committed before `before` and moves the retention floor; returns how many were
 * deleted. Readers behind the floor get RESYNC_REQUIRED. Runs under the write lock so the floor
 * and the head move consistently.
 */
export async function pruneFeed(em: Em, before: Date): Promise<number> {
  return em.transactional(async (tx) => {
    await takeWriteLock(tx);
    const rows: { n: string }[] = await tx.execute(
      `with gone as (delete from feed_events where commit_time < ? returning revision)
       select count(*) as n from gone`,
      [before],
    );
    await tx.execute(
      `update feed_state set retained_from = coalesce((select min(revision) from feed_events), head_revision + 1)`,
    );
    return Number(rows[0]?.n ?? 0);
  });
}

/**
 * One LISTEN connection per process: emits 'change' whenever a transaction that appended to the
 * feed commits. Reconnects after a lost connection and emits 'change' then, since notifications
 * sent meanwhile are lost (subscribers re-read from their cursor, so a spurious wake-up is safe).
 */
export class FeedNotifier extends EventEmitter {
  private client: pg.Client | null = null;
  private stopped = false;
  /** 'change' events emitted so far: a read started at generation g sees every commit notified up to g. */
  private emitted = 0;

  constructor(
    private readonly databaseUrl: string,
    private readonly logger: Logger,
  ) {
    super();
    this.setMaxListeners(0);
  }

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('notification', () => this.changed());
    client.on('error', (err: Error) => {
      // 57P01 admin_shutdown: PostgreSQL is stopping (Ctrl-C on `npm start` reaches the embedded one too).
      if ((err as { code?: string }).code === '57P01') this.logger.info({ code: '57P01' }, 'PostgreSQL is shutting down; feed listener reconnecting');
      else this.logger.warn({ err }, 'feed listener connection lost; reconnecting');
      this.client = null;
      void client.end().catch(() => undefined);
      this.reconnectLater();
    });
    await client.connect();
    await client.query('listen titanbot_feed');
    this.client = client;
    // Commits made while no listener was connected were not notified.
    this.changed();
  }

  /** How many 'change' events have been emitted. */
  get generation(): number {
    return this.emitted;
  }

  private changed(): void {
    this.emitted++;
    this.emit('change');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.end();
    this.client = null;
  }

  private reconnectLater(): void {
    if (this.stopped) return;
    setTimeout(() => {
      if (!this.stopped) this.start().catch((err) => (this.logger.warn({ err }, 'feed listener reconnect failed'), this.reconnectLater()));
    }, 1000).unref();
  }
}
