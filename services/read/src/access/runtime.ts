import type { Metadata } from '@grpc/grpc-js';
import type { ChangeFeedServiceClient } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import type { ServiceMetrics } from '@titanbot/service-kit/metrics';
import type { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import type { Logger } from 'pino';
import type { StatusTracker } from '../fleet/status-tracker.js';
import type { ExportCache } from '../export/cache.js';
import type { HotExports } from '../export/hot-exports.js';
import type { DeviceQueries } from '../store/device-queries.js';
import type { TokenRecord } from '../store/device-index.js';
import type { ReadModel } from '../store/read-model.js';
import type { LogThrottle, RateLimiter } from './rate-limit.js';
import type { RetryPacer } from './retry-pacer.js';
import type { ExportUrlSigner } from './export-urls.js';

/** Why a daemon call failed authentication: the label of its counter and warn line. */
export type AuthFailureReason = 'missing' | 'malformed' | 'unknown' | 'expired' | 'revoked';

/** Counts of calls refused before reaching a handler, every one of them (for metrics). */
export interface ReadCounters {
  authFailures: Record<AuthFailureReason, number>;
  /** Calls refused RESOURCE_EXHAUSTED by the per-device rate limit (RATE_LIMITED) or log-line limit (LOG_RATE_LIMITED). */
  rateLimited: number;
  /** Calls refused unchecked because their peer address failed authentication too often (AUTH_THROTTLED). */
  authThrottled: number;
  /**
   * DownloadExport streams started, by what they carry: `delta`; `full` (no held file named);
   * `full_base_missing` (the held file is no longer kept here, or is not the one named);
   * `full_delta_larger` (the delta is over DELTA_MAX_RATIO of the file).
   */
  downloads: Record<DownloadKind, number>;
  /** DownloadExport calls refused RESOURCE_EXHAUSTED DOWNLOADS_BUSY: DOWNLOADS_MEMORY_BUDGET was held, or DOWNLOADS_MAX_CONCURRENT streams ran. */
  downloadsBusy: number;
  /** Answers of the HTTP origin (EXPORT_HTTP_ADDR) by status code. */
  exportHttp: Record<string, number>;
  /** Body bytes of the HTTP origin's 200 and 206 answers to GET (their Content-Length). */
  exportHttpBytes: number;
}

export type DownloadKind = 'delta' | 'full' | 'full_base_missing' | 'full_delta_larger';

/** All counters at zero. */
export const newReadCounters = (): ReadCounters => ({
  authFailures: { missing: 0, malformed: 0, unknown: 0, expired: 0, revoked: 0 },
  rateLimited: 0,
  authThrottled: 0,
  downloads: { delta: 0, full: 0, full_base_missing: 0, full_delta_larger: 0 },
  downloadsBusy: 0,
  exportHttp: { '200': 0, '206': 0, '304': 0, '403': 0, '404': 0, '416': 0 },
  exportHttpBytes: 0,
});

/** What every daemon API handler needs, built once in main.ts. */
export interface ReadRuntime {
  model: ReadModel;
  queries: DeviceQueries;
  exports: ExportCache;
  /** Export files held in memory as encoded chunk messages. */
  hotExports: HotExports;
  /** Opens account passwords and SSH private keys, for the owning daemon only. */
  keyring: DataKeyring;
  logger: Logger;
  /** The write service's feed API, for the calls forwarded on a daemon's behalf. */
  feed: ChangeFeedServiceClient;
  /** Metadata carrying the reader credential. */
  readerMetadata: () => Metadata;
  /** Injectable clock, ms since the epoch: tests move time. */
  clock: () => number;
  /** Aborted on shutdown: long-lived streams end. */
  shutdown: AbortSignal;
  settings: {
    backendPublicKey: string;
    sshServerName: string;
    sshServerIp: string;
    sshServerCommonPort: number;
    exportChunkBytes: number;
    /** A delta is sent only when at most this fraction of the file's size (DELTA_MAX_RATIO). */
    deltaMaxRatio: number;
    forwardTimeoutMs: number;
    /** Open WatchVersion streams a device may hold at once here (DAEMON_MAX_WATCHES). */
    maxWatchesPerDevice: number;
    /** Bytes DownloadExport streams may hold together (DOWNLOADS_MEMORY_BUDGET). */
    downloadsMemoryBudget: number;
    /** DownloadExport streams served at once (DOWNLOADS_MAX_CONCURRENT; unset: Infinity, the budget alone decides). */
    maxConcurrentDownloads: number;
  };
  /** Signs the URLs DownloadExport offers (EXPORT_PUBLIC_BASE_URL); undefined = chunks only. */
  exportUrls: ExportUrlSigner | undefined;
  /** The RetryInfo delays of refused downloads (DOWNLOADS_RETRY_DELAY at least). */
  downloadPacer: RetryPacer;
  /** Live figures for logs and metrics. */
  gauges: { downloads: { active: number; reservedBytes: number }; activeWatches: number };
  /** Per device (by uuid, whichever of its tokens calls): DAEMON_RPS calls per second, DAEMON_BURST at once. */
  limiter: RateLimiter;
  /** Per device (by uuid): log lines, one token each (DAEMON_LOG_LINES_PER_SECOND, DAEMON_LOG_LINES_BURST). */
  logLimiter: RateLimiter;
  /** Per peer address: failed authentications (AUTH_FAILURES_PER_SECOND, AUTH_FAILURES_BURST). */
  authFailureLimiter: RateLimiter;
  /** Throttles the warn lines of refused calls, keyed by cause, so a flood cannot flood the logs. */
  refusalLog: LogThrottle;
  counters: ReadCounters;
  /** Where every finished call is counted and timed. */
  metrics: ServiceMetrics;
  /** What each daemon holds and when it last called, for the fleet view. */
  statuses: StatusTracker;
}

/** The caller: a usable daemon token (its plaintext kept only for forwarding RotateToken). */
export interface DaemonPrincipal {
  token: TokenRecord;
  plaintext: string;
  /** Hex SHA-256 of `plaintext`: the token's key in the read model. */
  hash: string;
}
