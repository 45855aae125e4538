import {
  ChangeFeedServiceService,
  Operation,
  type ChangeEvent,
  type ChangeFeedServiceServer,
  type SubscribeResponse,
} from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { ingestLogs } from '../app/logs.js';
import { rotateDaemonToken } from '../app/daemon-tokens.js';
import { FED_TABLES, readEvents, readFeedState, readSnapshot, type FeedNotifier, type StoredEvent } from '../db/feed-store.js';
import { DomainError } from '../domain/errors.js';
import { send } from '@titanbot/service-kit/stream';
import { serverStream, unary, type Runtime } from './handler.js';

export interface FeedOptions {
  /** Events per batch message. */
  batchSize: number;
  /** Rows per snapshot message. */
  snapshotPageRows: number;
  /** Milliseconds between progress messages on an idle stream. */
  progressIntervalMs: number;
  /** Aborted on shutdown: open streams end cleanly. */
  shutdown: AbortSignal;
}

const resyncRequired = (why: string): DomainError =>
  new DomainError('RESYNC_REQUIRED', `${why}; call Snapshot, then Subscribe after its revision`);

const eventToProto = (e: StoredEvent): ChangeEvent => ({
  revision: e.revision,
  table: e.table,
  operation: e.operation === 'delete' ? Operation.OPERATION_DELETE : Operation.OPERATION_UPSERT,
  row: e.row,
  commitTime: e.commitTime,
});

/** titanbot.feed.v1.ChangeFeedService handlers (reader credential only). */
export function changeFeedService(rt: Runtime, notifier: FeedNotifier, options: FeedOptions): ChangeFeedServiceServer {
  const m = ChangeFeedServiceService;
  return {
    subscribe: serverStream(rt, m.subscribe, async (call) => {
      const em = rt.orm.em.fork();
      const state = await readFeedState(em);
      const { afterRevision, epoch } = call.request;
      if (epoch && epoch !== state.epoch) throw resyncRequired(`epoch ${epoch} is not the feed's (${state.epoch})`);
      if (afterRevision < state.retainedFrom - 1) throw resyncRequired(`revision ${afterRevision} is older than the retained history`);
      if (afterRevision > state.headRevision) throw resyncRequired(`revision ${afterRevision} is ahead of the head`);

      let cursor = afterRevision;
      let changed = true; // read at least once
      let lastProgress = -Infinity;
      const onChange = (): void => {
        changed = true;
        wake();
      };
      let wake: () => void = () => undefined;
      notifier.on('change', onChange);
      const onCancel = (): void => wake();
      call.on('cancelled', onCancel);
      options.shutdown.addEventListener('abort', onCancel);
      const message = (kind: SubscribeResponse['kind']): SubscribeResponse => ({ epoch: state.epoch, kind });
      try {
        while (!call.cancelled && !options.shutdown.aborted) {
          if (changed) {
            changed = false;
            // Drain everything committed so far; a notification arriving meanwhile sets `changed` again.
            for (;;) {
              const events = await readEvents(em, cursor, options.batchSize);
              if (events.length === 0) break;
              // Pruning can overtake a slow subscriber: never skip silently.
              if (events[0]!.revision !== cursor + 1) throw resyncRequired(`revisions after ${cursor} were pruned`);
              if (!(await send(call, message({ $case: 'batch', value: { events: events.map(eventToProto) } })))) return;
              cursor = events[events.length - 1]!.revision;
            }
          }
          const sinceProgress = performance.now() - lastProgress;
          if (sinceProgress >= options.progressIntervalMs) {
            if (!(await send(call, message({ $case: 'progress', value: { headRevision: cursor } })))) return;
            lastProgress = performance.now();
          }
          if (changed) continue;
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, Math.max(1, options.progressIntervalMs - (performance.now() - lastProgress))).unref();
          });
          wake = () => undefined;
        }
      } finally {
        notifier.off('change', onChange);
        call.off('cancelled', onCancel);
        options.shutdown.removeEventListener('abort', onCancel);
      }
    }),

    snapshot: serverStream(rt, m.snapshot, async (call) => {
      await readSnapshot(
        rt.orm.em.fork(),
        options.snapshotPageRows,
        async (state) => {
          await send(call, { kind: { $case: 'header', value: { epoch: state.epoch, revision: state.headRevision, tables: [...FED_TABLES] } } });
        },
        (table, rows) => send(call, { kind: { $case: 'rows', value: { table, rows } } }),
      );
    }),

    rotateDaemonToken: unary(rt, m.rotateDaemonToken, { write: true }, async (ctx, req) => {
      const rotated = await rotateDaemonToken(ctx, req.token);
      return {
        token: rotated.plaintext,
        uuid: rotated.successor.uuid,
        deviceUuid: rotated.successor.deviceUuid,
        expireTime: rotated.successor.expireTime,
        createTime: rotated.successor.createTime,
        previousExpireTime: rotated.previous.expireTime,
      };
    }),

    ingestLogs: unary(rt, m.ingestLogs, { write: true, requestId: (r) => r.requestId }, async (ctx, req) => ({
      acceptedCount: await ingestLogs(
        ctx,
        req.deviceUuid,
        req.lines.map((l) => ({ line: l.line, ...(l.logTime ? { logTime: l.logTime } : {}) })),
      ),
    })),
  };
}
