import { DomainError } from '../domain/errors.js';
import { readEvents, readFeedState, type FeedNotifier, type StoredEvent } from '../db/feed-store.js';

export { FED_TABLES, readSnapshot, type FeedNotifier, type StoredEvent } from '../db/feed-store.js';
import type { Em } from '../db/orm.js';

/** What a subscriber receives: a batch of consecutive events, or the head on an idle stream. */
export type FeedMessage = { kind: 'batch'; events: StoredEvent[] } | { kind: 'progress'; headRevision: number };

export interface SubscriptionOptions {
  /** Events per batch. */
  batchSize: number;
  /** Milliseconds between progress messages on an idle stream. */
  progressIntervalMs: number;
}

/**
 * Feed reads shared by the subscribers that ask for the same events at once. Every caught-up
 * subscriber wakes on the same notification and asks for the events after the same revision; one
 * query answers them all, so a commit costs PostgreSQL and this process one read however many
 * replicas follow (`npm run bench -- feed-fanout` measured a read per subscriber per commit at
 * 0.42 ms of CPU per write per replica). A subscriber joins a read only when it was started no
 * earlier than the notification the subscriber is draining for (`since`, FeedNotifier.generation),
 * so it never takes an answer older than what woke it. The events returned are shared: read-only.
 */
export class FeedReads {
  private readonly inFlight = new Map<number, { generation: number; events: Promise<StoredEvent[]> }>();

  constructor(
    private readonly em: Em,
    private readonly notifier: FeedNotifier,
    private readonly batchSize: number,
  ) {}

  /** At most `batchSize` events after revision `after`, from a read started at notification `since` or later. */
  read(after: number, since: number): Promise<StoredEvent[]> {
    const running = this.inFlight.get(after);
    if (running && running.generation >= since) return running.events;
    const entry = { generation: this.notifier.generation, events: readEvents(this.em, after, this.batchSize) };
    this.inFlight.set(after, entry);
    const done = (): void => {
      if (this.inFlight.get(after) === entry) this.inFlight.delete(after);
    };
    entry.events.then(done, done);
    return entry.events;
  }
}

/** FAILED_PRECONDITION RESYNC_REQUIRED: the reader must rebuild from a Snapshot. */
export const resyncRequired = (why: string): DomainError => new DomainError('RESYNC_REQUIRED', `${why}; call Snapshot, then Subscribe after its revision`);

/**
 * Subscribe: the feed's epoch, then every event after `afterRevision` in order, in batches of
 * `batchSize` (read through `reads`, shared with the other subscribers at the same revision), then
 * live: woken by the notifier (LISTEN/NOTIFY), with a progress message at least
 * every `progressIntervalMs` when idle. The messages are produced one at a time as the consumer
 * pulls them, so a slow consumer holds at most one batch. Ends when `signal` aborts.
 * Errors: RESYNC_REQUIRED for a foreign epoch, a revision behind the retained history or ahead of
 * the head, or when pruning overtakes the stream (never a silent gap).
 */
export async function openSubscription(
  em: Em,
  reads: FeedReads,
  notifier: FeedNotifier,
  request: { epoch: string; afterRevision: number },
  options: SubscriptionOptions,
  signal: AbortSignal,
): Promise<{ epoch: string; messages: AsyncGenerator<FeedMessage> }> {
  const state = await readFeedState(em);
  const { afterRevision, epoch } = request;
  if (epoch && epoch !== state.epoch) throw resyncRequired(`epoch ${epoch} is not the feed's (${state.epoch})`);
  if (afterRevision < state.retainedFrom - 1) throw resyncRequired(`revision ${afterRevision} is older than the retained history`);
  if (afterRevision > state.headRevision) throw resyncRequired(`revision ${afterRevision} is ahead of the head`);
  return { epoch: state.epoch, messages: follow(reads, notifier, afterRevision, options, signal) };
}

async function* follow(reads: FeedReads, notifier: FeedNotifier, afterRevision: number, options: SubscriptionOptions, signal: AbortSignal): AsyncGenerator<FeedMessage> {
  let cursor = afterRevision;
  let changed = true; // read at least once
  let lastProgress = -Infinity;
  let wake: () => void = () => undefined;
  const onChange = (): void => {
    changed = true;
    wake();
  };
  const onAbort = (): void => wake();
  notifier.on('change', onChange);
  signal.addEventListener('abort', onAbort);
  try {
    while (!signal.aborted) {
      if (changed) {
        changed = false;
        const since = notifier.generation;
        // Drain everything committed so far; a notification arriving meanwhile sets `changed` again.
        for (;;) {
          const events = await reads.read(cursor, since);
          if (events.length === 0) break;
          // Pruning can overtake a slow subscriber: never skip silently.
          if (events[0]!.revision !== cursor + 1) throw resyncRequired(`revisions after ${cursor} were pruned`);
          yield { kind: 'batch', events };
          if (signal.aborted) return;
          cursor = events[events.length - 1]!.revision;
        }
      }
      if (performance.now() - lastProgress >= options.progressIntervalMs) {
        yield { kind: 'progress', headRevision: cursor };
        lastProgress = performance.now();
      }
      if (changed || signal.aborted) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.max(1, options.progressIntervalMs - (performance.now() - lastProgress))).unref();
      });
      wake = () => undefined;
    }
  } finally {
    notifier.off('change', onChange);
    signal.removeEventListener('abort', onAbort);
  }
}
