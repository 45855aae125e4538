import type { Em } from './orm.js';

/** Arbitrary constant naming the advisory lock; shared by every write replica. */
const WRITE_LOCK_KEY = 7_310_001;

/**
 * Serializes write transactions across all write replicas until the transaction ends.
 *
 * Taken first in every write transaction so that (a) the feed counter row, locked by the feed
 * triggers, can never be part of a deadlock cycle with row locks, and (b) look-up-else-create
 * (shared pixels and shapes), smallest-free-port allocation and uniqueness pre-checks see a
 * stable database. Admin writes are low-rate, so one writer at a time costs little; reads never
 * take it. See docs/decisions.md.
 */
export async function takeWriteLock(em: Em): Promise<void> {
  await em.execute('select pg_advisory_xact_lock(?)', [WRITE_LOCK_KEY]);
}

/**
 * Tags the feed events this transaction writes with `traceparent` (W3C), read by `feed_append`;
 * called only while tracing is on, so the transaction is one statement longer only then.
 */
export async function tagFeedEvents(em: Em, traceparent: string): Promise<void> {
  await em.execute("select set_config('titanbot.traceparent', ?, true)", [traceparent]);
}
