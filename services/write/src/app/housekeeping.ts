import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { pruneFeed } from '../db/feed-store.js';
import { pruneLogLines } from '../db/log-store.js';
import { pruneRequestIds } from '../db/request-ids.js';

/** How long a create's request_id is honoured (AIP-155), in ms. */
const REQUEST_ID_RETENTION_MS = 86_400_000;

export interface HousekeepingOptions {
  /** Feed history kept (ms); older events go and readers behind them resync from a snapshot. */
  feedRetentionMs: number;
  /** Daemon log lines kept (ms), by receive time. */
  logRetentionMs: number;
  /** Between runs (ms). */
  everyMs: number;
  clock: () => Date;
}

/**
 * Deletes what is past its retention: feed history, daemon log lines and stored request ids. Runs
 * every `everyMs` on any number of write replicas at once (each delete is idempotent). Failures
 * are logged and retried at the next run. Returns a function that stops it.
 */
export function startHousekeeping(orm: MikroORM, logger: Logger, options: HousekeepingOptions): () => void {
  const timer = setInterval(() => {
    const now = options.clock().getTime();
    const em = orm.em.fork();
    void (async () => {
      await pruneFeed(em, new Date(now - options.feedRetentionMs));
      await pruneLogLines(em, new Date(now - options.logRetentionMs));
      await pruneRequestIds(em, new Date(now - REQUEST_ID_RETENTION_MS));
    })().catch((err: unknown) => logger.warn({ err }, 'housekeeping failed'));
  }, options.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
