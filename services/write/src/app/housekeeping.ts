import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { pruneFeed } from '../db/feed-store.js';
import { pruneDeviceStatusChanges } from '../db/fleet-store.js';
import { ensureLogPartitions, pruneLogLines, pruneLogRequests } from '../db/log-store.js';
import { pruneAudit } from './audit.js';
import { pruneRequestIds } from '../db/request-ids.js';

/** How long a create's request_id is honoured (AIP-155), in ms. */
const REQUEST_ID_RETENTION_MS = 86_400_000;

export interface HousekeepingOptions {
  /** Feed history kept (ms); older events go and readers behind them resync from a snapshot. */
  feedRetentionMs: number;
  /** Daemon log lines kept (ms), by receive time. */
  logRetentionMs: number;
  /** Audit events kept (ms). */
  auditRetentionMs: number;
  /** Devices' status history kept (ms). */
  statusHistoryRetentionMs: number;
  /** Between runs (ms). */
  everyMs: number;
  clock: () => Date;
}

/** Day partitions of `log_entries` kept ready ahead of the clock (today and the next two days). */
const LOG_PARTITION_DAYS_AHEAD = 3;

/**
 * One housekeeping pass: creates the coming days' log partitions, then deletes what is past its
 * retention: feed history, daemon log lines (whole day partitions first), stored request ids,
 * audit events, devices' status history.
 * Safe on any number of write replicas at once (each step is idempotent).
 */
export async function housekeep(orm: MikroORM, logger: Logger, options: Omit<HousekeepingOptions, 'everyMs'>): Promise<void> {
  const now = options.clock().getTime();
  const em = orm.em.fork();
  const skipped = await ensureLogPartitions(em, new Date(now), LOG_PARTITION_DAYS_AHEAD);
  if (skipped.length > 0) logger.warn({ partitions: skipped }, 'log partitions not created: their days already have lines in the default partition');
  await pruneFeed(em, new Date(now - options.feedRetentionMs));
  await pruneLogLines(em, new Date(now - options.logRetentionMs));
  await pruneRequestIds(em, new Date(now - REQUEST_ID_RETENTION_MS));
  await pruneLogRequests(em, new Date(now - REQUEST_ID_RETENTION_MS));
  await pruneAudit(em, new Date(now - options.auditRetentionMs));
  await pruneDeviceStatusChanges(em, new Date(now - options.statusHistoryRetentionMs));
}

/**
 * Runs `housekeep` at start and every `everyMs`. Failures are logged and retried at the next run.
 * Returns a function that stops it.
 */
export function startHousekeeping(orm: MikroORM, logger: Logger, options: HousekeepingOptions): () => void {
  const run = (): void => void housekeep(orm, logger, options).catch((err: unknown) => logger.warn({ err }, 'housekeeping failed'));
  run();
  const timer = setInterval(run, options.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
