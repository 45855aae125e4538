import type { Metadata, ServiceError } from '@grpc/grpc-js';
import type { ChangeFeedServiceClient } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { unaryCall } from '@titanbot/service-kit/grpc-client';
import type { Logger } from 'pino';
import type { StatusTracker } from './status-tracker.js';

/** Most statuses in one ReportDeviceStatuses batch (the write service's limit). */
const MAX_BATCH = 10_000;

/** What the status batcher needs of the replica. */
export interface StatusReportDeps {
  statuses: StatusTracker;
  feed: ChangeFeedServiceClient;
  readerMetadata: () => Metadata;
  logger: Logger;
}

/**
 * Every `everyMs`, sends what the tracker gathered to the write service
 * (ChangeFeedService.ReportDeviceStatuses, reader credential), one batch in flight at a time. A
 * batch that fails goes back into the tracker for the next round: a lost batch only delays the
 * fleet view, and a write service that is down is logged once until it answers again. Returns a
 * function that stops it and waits for a batch in flight.
 */
export function startStatusReports(deps: StatusReportDeps, replica: string, everyMs: number): () => Promise<void> {
  let inFlight: Promise<void> | undefined;
  let failing = false;
  const send = (): Promise<void> => {
    const batch = deps.statuses.drain(MAX_BATCH);
    if (batch.statuses.length === 0 && batch.scopeVersions.length === 0 && batch.rolloutVersions.length === 0) return Promise.resolve();
    const request = { replica, statuses: batch.statuses, scopeVersions: batch.scopeVersions, rolloutVersions: batch.rolloutVersions };
    return unaryCall(deps.feed, deps.feed.reportDeviceStatuses, request, deps.readerMetadata(), { deadline: Date.now() + Math.max(everyMs, 5_000) }).then(
      () => {
        if (failing) deps.logger.info('fleet: status batches stored again');
        failing = false;
      },
      (err: ServiceError) => {
        deps.statuses.requeue(batch);
        if (!failing) deps.logger.warn({ code: err.code, err: err.details }, 'fleet: status batch not stored; kept for the next one');
        failing = true;
      },
    );
  };
  const timer = setInterval(() => {
    inFlight ??= send().finally(() => (inFlight = undefined));
  }, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await inFlight;
  };
}
