import { Metadata, status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import type { ChangeEvent, ChangeFeedServiceClient, SnapshotResponse, SubscribeResponse } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { Operation } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { Backoff, sleep } from '@titanbot/service-kit/backoff';
import { errorReason } from '@titanbot/service-kit/status';
import { contextFromTraceparent, inSpan, tracerOf, tracingEnabled } from '@titanbot/service-kit/tracing';
import type { Logger } from 'pino';
import { FeedGapError, type ReadModel, type SnapshotLoad } from '../store/read-model.js';
import { apiKeyMetadata } from '@titanbot/service-kit/grpc-client';

export interface FeedConsumerOptions {
  /** The reader credential, sent as `x-api-key`. */
  readerToken: string;
  /** First reconnect delay ceiling, ms; doubles per failure up to `retryMaxMs`. */
  retryBaseMs: number;
  /** Milliseconds that never step back: when the feed was last heard from. */
  monotonic: () => number;
  retryMaxMs: number;
}

const TRACER = tracerOf('read');

/** Why the consumer must rebuild from a snapshot rather than resume. */
class ResyncNeeded extends Error {}

/**
 * Keeps the read model current (docs/decisions.md "Change feed"): Subscribe after the checkpoint, apply
 * each batch with its checkpoint in one SQLite transaction, and rebuild from Snapshot when there
 * is no checkpoint yet, when the write service answers RESYNC_REQUIRED, when the feed's epoch is
 * not the checkpoint's, or when a revision is missing. Any other failure (write service down,
 * stream broken) retries with capped, full-jitter exponential backoff.
 */
export class FeedConsumer {
  private readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private call: ClientReadableStream<unknown> | undefined;
  private loop: Promise<void> | undefined;
  private caughtUpOnce = false;
  private resolveCaughtUp!: () => void;
  /** Resolves the first time the model reaches the head revision the feed reported after connecting. */
  readonly caughtUp = new Promise<void>((resolve) => (this.resolveCaughtUp = resolve));
  /** The head revision the feed last reported (progress messages), for lag figures. */
  headRevision = 0;
  /** `monotonic()` at the last message from the feed (batch or progress); -Infinity before the first. */
  lastContactMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly client: ChangeFeedServiceClient,
    private readonly model: ReadModel,
    private readonly logger: Logger,
    private readonly options: FeedConsumerOptions,
  ) {
    this.backoff = new Backoff(options.retryBaseMs, options.retryMaxMs);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Cancels the stream and waits for the loop to finish. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.call?.cancel();
    await this.loop;
  }

  private async run(): Promise<void> {
    let resync = false;
    while (!this.abort.signal.aborted) {
      try {
        if (resync || !this.model.checkpoint) await this.rebuild();
        resync = false;
        await this.follow();
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (err instanceof ResyncNeeded || err instanceof FeedGapError) {
          this.logger.warn({ reason: err.message }, 'feed: rebuilding the read model from a snapshot');
          resync = true;
          continue;
        }
        const delayMs = Math.round(this.backoff.next());
        const e = err as Partial<ServiceError>;
        this.logger.warn({ code: e.code === undefined ? undefined : status[e.code], err: e.details ?? String(err), retryInMs: delayMs }, 'feed: disconnected; retrying');
        await sleep(delayMs, this.abort.signal);
      }
    }
  }

  private metadata(): Metadata {
    return apiKeyMetadata(this.options.readerToken);
  }

  /**
   * Applies one Subscribe batch. With tracing on, each run of events written by one traced call
   * is applied in a `feed.apply` span continuing that call's trace (ChangeEvent.traceparent), so
   * the announcement to watchers and the builds that follow are part of the change's journey.
   */
  private apply(epoch: string, events: ChangeEvent[]): void {
    const toModel = (e: ChangeEvent) => ({
      revision: e.revision,
      table: e.table,
      operation: e.operation === Operation.OPERATION_DELETE ? ('delete' as const) : ('upsert' as const),
      row: e.row ?? {},
      transactionContinues: e.transactionContinues,
    });
    if (!tracingEnabled()) {
      this.model.applyBatch(epoch, events.map(toModel));
      return;
    }
    for (let start = 0; start < events.length; ) {
      let end = start + 1;
      while (end < events.length && events[end]!.traceparent === events[start]!.traceparent) end++;
      const run = events.slice(start, end);
      inSpan(TRACER, 'feed.apply', (span) => {
        span.setAttributes({ 'titanbot.feed.first_revision': run[0]!.revision, 'titanbot.feed.events': run.length });
        this.model.applyBatch(epoch, run.map(toModel));
      }, contextFromTraceparent(run[0]!.traceparent || undefined));
      start = end;
    }
  }

  /** Subscribes after the checkpoint and applies batches until the stream ends or fails. */
  private follow(): Promise<void> {
    // A transaction left half-applied by the previous stream is received again, whole.
    this.model.abortPending();
    const checkpoint = this.model.checkpoint!;
    const call = this.client.subscribe({ afterRevision: checkpoint.revision, epoch: checkpoint.epoch }, this.metadata());
    this.call = call;
    return new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (err: unknown): void => {
        failed = true;
        call.cancel();
        reject(err);
      };
      call.on('data', (message: SubscribeResponse) => {
        if (failed) return;
        this.lastContactMs = this.options.monotonic();
        try {
          if (message.epoch !== this.model.checkpoint!.epoch) throw new ResyncNeeded(`the feed's epoch is now ${message.epoch}`);
          const kind = message.kind;
          if (kind?.$case === 'batch') {
            this.apply(message.epoch, kind.value.events);
            this.backoff.reset();
          } else if (kind?.$case === 'progress') {
            this.headRevision = kind.value.headRevision;
            this.backoff.reset();
            if (!this.caughtUpOnce && this.model.checkpoint!.revision >= this.headRevision) {
              this.caughtUpOnce = true;
              this.logger.info({ revision: this.headRevision }, 'feed: caught up');
              this.resolveCaughtUp();
            }
          }
        } catch (err) {
          fail(err);
        }
      });
      call.on('error', (err: ServiceError) => {
        if (failed) return;
        failed = true;
        reject(err.code === status.FAILED_PRECONDITION && errorReason(err) === 'RESYNC_REQUIRED' ? new ResyncNeeded(err.details) : err);
      });
      call.on('end', () => {
        if (!failed) reject(new Error('feed stream ended'));
      });
    });
  }

  /** Replaces the read model with a Snapshot, in one SQLite transaction. */
  private rebuild(): Promise<void> {
    const call = this.client.snapshot({}, this.metadata());
    this.call = call;
    return new Promise<void>((resolve, reject) => {
      let load: SnapshotLoad | undefined;
      let failed = false;
      const fail = (err: unknown): void => {
        if (failed) return;
        failed = true;
        load?.abort();
        call.cancel();
        reject(err);
      };
      call.on('data', (message: SnapshotResponse) => {
        if (failed) return;
        try {
          const kind = message.kind;
          if (kind?.$case === 'header') {
            load = this.model.beginSnapshot(kind.value.epoch, kind.value.revision);
          } else if (kind?.$case === 'rows') {
            if (!load) throw new Error('snapshot rows before its header');
            load.rows(kind.value.table, kind.value.rows);
          }
        } catch (err) {
          fail(err);
        }
      });
      call.on('error', fail);
      call.on('end', () => {
        if (failed) return;
        if (!load) return fail(new Error('snapshot ended without a header'));
        try {
          load.commit();
          this.logger.info(this.model.checkpoint, 'feed: read model rebuilt from a snapshot');
          resolve();
        } catch (err) {
          fail(err);
        }
      });
    });
  }
}
