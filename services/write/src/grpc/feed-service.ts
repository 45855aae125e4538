import {
  ChangeFeedServiceService,
  Operation,
  SubscribeResponse,
  type ChangeEvent,
  type ChangeFeedServiceServer,
} from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { orUndefined } from './translate.js';
import { rotateDaemonToken } from '../app/daemon-tokens.js';
import { FED_TABLES, FeedReads, openSubscription, readSnapshot, type FeedNotifier, type StoredEvent, type SubscriptionOptions } from '../app/feed-subscription.js';
import type { ServerWritableStream } from '@grpc/grpc-js';
import { send } from '@titanbot/service-kit/stream';
import * as fleet from '../app/fleet.js';
import { serverStream, unary, type Runtime } from './handler.js';
import { required } from './translate.js';
import { isInstallFailure } from '@titanbot/service-kit/request-checks';
import { invalid } from '../domain/errors.js';

/** A reported InstallFailure, checked: only the enum's values are stored. INVALID_ARGUMENT naming `field` otherwise. */
function installFailure(value: number, field: string): number {
  if (!isInstallFailure(value)) throw invalid(field, 'is not an InstallFailure');
  return value;
}

export interface FeedOptions extends SubscriptionOptions {
  /** Rows per snapshot message. */
  snapshotPageRows: number;
  /** Aborted on shutdown: open streams end cleanly. */
  shutdown: AbortSignal;
}

/** Aborts when the client cancels `call`. */
function cancelSignal(call: ServerWritableStream<unknown, unknown>): AbortSignal {
  const controller = new AbortController();
  if (call.cancelled) controller.abort();
  else call.once('cancelled', () => controller.abort());
  return controller.signal;
}

const eventToProto = (e: StoredEvent): ChangeEvent => ({
  revision: e.revision,
  table: e.table,
  operation: e.operation === 'delete' ? Operation.OPERATION_DELETE : Operation.OPERATION_UPSERT,
  row: e.row,
  commitTime: e.commitTime,
  transactionContinues: e.transactionContinues,
  traceparent: e.traceparent,
});

/**
 * The SubscribeResponse of a batch, built once per batch read (FeedReads shares one read among the
 * subscribers at the same revision), so `subscribeEncoder` encodes it once for all of them.
 */
const batchMessages = new WeakMap<readonly StoredEvent[], SubscribeResponse>();
function batchMessage(epoch: string, events: StoredEvent[]): SubscribeResponse {
  const cached = batchMessages.get(events);
  if (cached?.epoch === epoch) return cached;
  const message: SubscribeResponse = { epoch, kind: { $case: 'batch', value: { events: events.map(eventToProto) } } };
  batchMessages.set(events, message);
  return message;
}

/**
 * Encoder of SubscribeResponse for the server that encodes a message object once: a batch shared
 * by every replica's stream is one object (batchMessage), so a commit followed by 50 replicas is
 * encoded once, not 50 times.
 */
export function subscribeEncoder(): (message: SubscribeResponse) => Buffer {
  const encoded = new WeakMap<SubscribeResponse, Buffer>();
  return (message) => {
    let bytes = encoded.get(message);
    if (!bytes) encoded.set(message, (bytes = Buffer.from(SubscribeResponse.encode(message).finish())));
    return bytes;
  };
}

/** The service definition the server registers: the generated one, with SubscribeResponse encoded once per message (subscribeEncoder). */
export const changeFeedServiceDefinition = (): typeof ChangeFeedServiceService => ({
  ...ChangeFeedServiceService,
  subscribe: { ...ChangeFeedServiceService.subscribe, responseSerialize: subscribeEncoder() },
});

/** titanbot.feed.v1.ChangeFeedService handlers (reader credential only). */
export function changeFeedService(rt: Runtime, notifier: FeedNotifier, options: FeedOptions): ChangeFeedServiceServer {
  const m = ChangeFeedServiceService;
  const reads = new FeedReads(rt.orm.em.fork(), notifier, options.batchSize);
  return {
    subscribe: serverStream(rt, m.subscribe, async (call) => {
      // The stream ends when the client cancels or the service shuts down.
      const ended = AbortSignal.any([options.shutdown, cancelSignal(call)]);
      const { epoch, messages } = await openSubscription(rt.orm.em.fork(), reads, notifier, call.request, options, ended);
      for await (const message of messages) {
        const response: SubscribeResponse =
          message.kind === 'batch' ? batchMessage(epoch, message.events) : { epoch, kind: { $case: 'progress', value: { headRevision: message.headRevision } } };
        if (!(await send(call, response))) return;
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
        expireTime: orUndefined(rotated.successor.expireTime),
        createTime: rotated.successor.createTime,
        previousExpireTime: orUndefined(rotated.previous.expireTime),
      };
    }),

    // Not a write transaction: nothing here is on the feed or needs the global write lock.
    reportDeviceStatuses: unary(rt, m.reportDeviceStatuses, { write: false }, async (ctx, req) => {
      await fleet.reportDeviceStatuses(
        ctx,
        req.replica,
        req.statuses.map((st, i) => ({
          deviceUuid: st.deviceUuid,
          scopeKey: fleet.scopeKey(st.logicalId),
          heldVersion: st.heldVersion,
          heldSha256: st.heldSha256,
          failure: installFailure(st.failure, `statuses[${i}].failure`),
          failureMessage: st.failureMessage,
          lastContactTime: required(st.lastContactTime, 'statuses.last_contact_time'),
        })),
        req.scopeVersions.map((v) => ({ scopeKey: fleet.scopeKey(v.logicalId), version: v.version, since: required(v.since, 'scope_versions.since') })),
        req.rolloutVersions.map((v) => ({ rolloutUuid: v.rolloutUuid, scopeKey: fleet.scopeKey(v.logicalId), version: v.version })),
      );
      return {};
    }),

    // Not a write transaction: the log writer batches calls outside the global write lock.
    ingestLogs: unary(rt, m.ingestLogs, { write: false }, async (_ctx, req) => ({
      acceptedCount: await rt.logs.submit(
        req.deviceUuid,
        req.lines.map((l) => ({ line: l.line, ...(l.logTime ? { logTime: l.logTime } : {}) })),
        req.requestId,
      ),
    })),
  };
}
