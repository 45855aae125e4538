import path from 'node:path';
import v8 from 'node:v8';
import { credentials, Metadata } from '@grpc/grpc-js';
import { ChangeFeedServiceClient } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import { MAX_MESSAGE_BYTES, startGrpcServer, stopGrpcServer } from '@titanbot/service-kit/grpc-server';
import { ServiceMetrics, startMetricsServer, type MetricsServer } from '@titanbot/service-kit/metrics';
import { exitOnFatalErrors, runIfEntryPoint, serviceLogger, stopOnSignals } from '@titanbot/service-kit/process';
import { channelCredentials, serverCredentials } from '@titanbot/service-kit/tls';
import { setupTracing, stopTracing } from '@titanbot/service-kit/tracing';
import { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import { openSecretStore } from '@titanbot/service-kit/secrets/open';
import type { Logger } from 'pino';
import { loadReadConfig, type ReadConfig } from './config.js';
import { exportFormat } from '@titanbot/service-kit/daemon-database';
import { startLegacyHttp } from './legacy/http.js';
import { ExportCache } from './export/cache.js';
import { HotExports } from './export/hot-exports.js';
import { FeedConsumer } from './feed/consumer.js';
import { startStatusReports } from './fleet/status-reports.js';
import { StatusTracker } from './fleet/status-tracker.js';
import { daemonService, daemonServiceDefinition } from './grpc/daemon-service.js';
import { LogThrottle, RateLimiter } from './access/rate-limit.js';
import { RetryPacer } from './access/retry-pacer.js';
import { ExportUrlSigner } from './access/export-urls.js';
import { startExportOrigin } from './cdn/origin.js';

import { newReadCounters, type ReadCounters, type ReadRuntime } from './access/runtime.js';
import { DeviceQueries } from './store/device-queries.js';
import { ReadModel } from './store/read-model.js';
import { apiKeyMetadata } from '@titanbot/service-kit/grpc-client';

export interface ReadService {
  /** host:port the gRPC server listens on. */
  address: string;
  /** host:port serving GET /metrics; undefined when METRICS_ADDR is unset. */
  metricsAddress: string | undefined;
  /** host:port of the original system's daemon HTTP API; undefined when LEGACY_HTTP_ADDR is unset. */
  legacyHttpAddress: string | undefined;
  /** host:port of the HTTP origin of exports and deltas; undefined when EXPORT_HTTP_ADDR is unset. */
  exportHttpAddress: string | undefined;
  model: ReadModel;
  exports: ExportCache;
  consumer: FeedConsumer;
  /** Calls refused before reaching a handler (auth failures by reason, rate-limited), live. */
  counters: ReadCounters;
  /** Graceful stop: NOT_SERVING, end watch streams, drain calls (5 s at most), close SQLite. */
  stop(): Promise<void>;
}

/**
 * Composition root of a read replica: config -> SQLite read model under DATA_DIR/read/model ->
 * feed consumer (reader credential, WRITE_SERVICE_URL) -> export cache under
 * DATA_DIR/read/exports -> DaemonService on READ_GRPC_ADDR. Health is NOT_SERVING until the
 * model has caught up with the head revision the feed reported after connecting, and, with
 * FEED_LOST_AFTER, while the feed has been silent that long.
 */
/** The clocks a replica reads, injectable so tests move time instead of sleeping. */
export interface ReadClocks {
  /** Milliseconds since the epoch: token expiry, empire dates. */
  now: () => number;
  /** Milliseconds that never step back: rate limits, log throttles. */
  monotonic: () => number;
}

const systemClocks: ReadClocks = { now: Date.now, monotonic: () => performance.now() };

export async function startReadService(config: ReadConfig, logger: Logger, clocks: ReadClocks = systemClocks): Promise<ReadService> {
  // First: a listener that may not start (plaintext off loopback, unreadable certificates) opens nothing.
  const serverTls = serverCredentials(
    config.READ_GRPC_ADDR,
    { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE, allowPlaintext: config.ALLOW_PLAINTEXT, refreshMs: config.TLS_REFRESH_INTERVAL },
    logger,
  );
  const dir = path.join(config.DATA_DIR, 'read');
  const model = new ReadModel(path.join(dir, 'model'), exportFormat());
  const exports = new ExportCache(path.join(dir, 'exports'), config.EXPORT_CACHE_BYTES, model, logger);
  const feedTls = config.WRITE_SERVICE_TLS_CA_FILE
    ? { caFile: config.WRITE_SERVICE_TLS_CA_FILE, certFile: config.WRITE_SERVICE_TLS_CERT_FILE, keyFile: config.WRITE_SERVICE_TLS_KEY_FILE, refreshMs: config.TLS_REFRESH_INTERVAL }
    : undefined;
  const feed = new ChangeFeedServiceClient(config.WRITE_SERVICE_URL, channelCredentials(feedTls), {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  const readerMetadata = (): Metadata => apiKeyMetadata(config.READER_TOKEN);
  const consumer = new FeedConsumer(feed, model, logger, {
    readerToken: config.READER_TOKEN,
    retryBaseMs: config.FEED_RETRY_BASE,
    retryMaxMs: config.FEED_RETRY_MAX,
    monotonic: clocks.monotonic,
  });
  // Data keys open account passwords and SSH private keys for their own daemon; a store that is
  // down at start-up is retried when a sealed value is first opened.
  const keyring = new DataKeyring(openSecretStore(config, logger), logger);
  await keyring.init(false).catch((err: unknown) => logger.warn({ err }, 'data keys: not loaded yet'));
  const shutdown = new AbortController();
  const metrics = new ServiceMetrics();
  const exportUrls = config.EXPORT_PUBLIC_BASE_URL ? new ExportUrlSigner(keyring, config.EXPORT_PUBLIC_BASE_URL, config.EXPORT_URL_TTL, clocks.now) : undefined;
  const rt: ReadRuntime = {
    model,
    queries: new DeviceQueries(model.reader),
    exports,
    keyring,
    hotExports: new HotExports(config.EXPORT_CHUNK_BYTES),
    logger,
    feed,
    readerMetadata,
    clock: clocks.now,
    shutdown: shutdown.signal,
    settings: {
      backendPublicKey: config.BACKEND_PUBLIC_KEY,
      sshServerName: config.SSH_SERVER_NAME,
      sshServerIp: config.SSH_SERVER_IP,
      sshServerCommonPort: config.SSH_SERVER_COMMON_PORT,
      exportChunkBytes: config.EXPORT_CHUNK_BYTES,
      deltaMaxRatio: config.DELTA_MAX_RATIO,
      forwardTimeoutMs: config.FORWARD_TIMEOUT,
      maxWatchesPerDevice: config.DAEMON_MAX_WATCHES,
      downloadsMemoryBudget: config.DOWNLOADS_MEMORY_BUDGET,
      maxConcurrentDownloads: config.DOWNLOADS_MAX_CONCURRENT ?? Number.POSITIVE_INFINITY,
    },
    gauges: { downloads: { active: 0, reservedBytes: 0 }, activeWatches: 0 },
    exportUrls,
    downloadPacer: new RetryPacer({ baseDelayMs: config.DOWNLOADS_RETRY_DELAY, clock: clocks.monotonic }),
    limiter: new RateLimiter({ ratePerSecond: config.DAEMON_RPS, burst: config.DAEMON_BURST, clock: clocks.monotonic }),
    logLimiter: new RateLimiter({ ratePerSecond: config.DAEMON_LOG_LINES_PER_SECOND, burst: config.DAEMON_LOG_LINES_BURST, clock: clocks.monotonic }),
    authFailureLimiter: new RateLimiter({ ratePerSecond: config.AUTH_FAILURES_PER_SECOND, burst: config.AUTH_FAILURES_BURST, clock: clocks.monotonic }),
    refusalLog: new LogThrottle(1000, clocks.monotonic),
    counters: newReadCounters(),
    metrics,
    statuses: new StatusTracker(model.versions, clocks.now, config.STATUS_CONTACT_REFRESH),
  };
  registerReadMetrics(metrics, rt, consumer, clocks.monotonic);
  const grpc = await startGrpcServer(config.READ_GRPC_ADDR, serverTls, ['titanbot/daemon/v1/daemon_service.proto'], [
    { definition: daemonServiceDefinition(), implementation: daemonService(rt) },
  ], { maxConcurrentStreams: config.GRPC_MAX_CONCURRENT_STREAMS, requestMessageTimeoutMs: config.GRPC_REQUEST_MESSAGE_TIMEOUT });
  const address = `${config.READ_GRPC_ADDR.replace(/:\d+$/, '')}:${grpc.port}`;
  let metricsServer: MetricsServer | undefined;
  if (config.METRICS_ADDR) {
    metricsServer = await startMetricsServer(config.METRICS_ADDR, metrics.registry);
    logger.info({ address: metricsServer.address }, 'metrics listening at /metrics');
  }
  const legacyHttp = config.LEGACY_HTTP_ADDR
    ? await startLegacyHttp(rt, {
          address: config.LEGACY_HTTP_ADDR,
          certFile: config.TLS_CERT_FILE,
          keyFile: config.TLS_KEY_FILE,
          allowPlaintext: config.ALLOW_PLAINTEXT,
          requestTimeoutMs: config.LEGACY_HTTP_REQUEST_TIMEOUT,
        }, logger)
    : undefined;
  if (legacyHttp) logger.info({ address: legacyHttp.address }, 'legacy HTTP API listening');
  const origin =
    config.EXPORT_HTTP_ADDR && exportUrls
      ? await startExportOrigin(rt, exportUrls, { address: config.EXPORT_HTTP_ADDR, certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE, allowPlaintext: config.ALLOW_PLAINTEXT }, logger)
      : undefined;
  if (origin) logger.info({ address: origin.address, publicBaseUrl: config.EXPORT_PUBLIC_BASE_URL }, 'export HTTP origin listening');
  consumer.start();
  const stopStatusReports = startStatusReports(rt, config.REPLICA_NAME ?? address, config.STATUS_REPORT_INTERVAL);
  const stopHealth = followFeedHealth(consumer, config.FEED_LOST_AFTER, clocks.monotonic, shutdown.signal, (serving) => {
    grpc.health.setStatus('', serving ? 'SERVING' : 'NOT_SERVING');
    logger[serving ? 'info' : 'warn']({ feedLostAfterMs: config.FEED_LOST_AFTER }, serving ? 'health SERVING' : 'feed lost; health NOT_SERVING');
  });
  logger.info({ address, writeService: config.WRITE_SERVICE_URL, dataDir: dir }, 'read service listening');
  return {
    address,
    metricsAddress: metricsServer?.address,
    legacyHttpAddress: legacyHttp?.address,
    exportHttpAddress: origin?.address,
    model,
    exports,
    consumer,
    counters: rt.counters,
    async stop() {
      stopHealth();
      await stopStatusReports();
      grpc.health.setStatus('', 'NOT_SERVING');
      shutdown.abort();
      await consumer.stop();
      await stopGrpcServer(grpc.server, 5000);
      await legacyHttp?.close();
      await origin?.close();
      await metricsServer?.close();
      feed.close();
      model.close();
      logger.info('read service stopped');
    },
  };
}

/**
 * Health of a replica: SERVING once the model has caught up with the feed; with `lostAfterMs` > 0,
 * NOT_SERVING while nothing has come from the feed for that long (checked every
 * min(1 s, lostAfterMs / 4)), SERVING again at its next message. Returns a function that stops it.
 */
function followFeedHealth(consumer: FeedConsumer, lostAfterMs: number, monotonic: () => number, shutdown: AbortSignal, set: (serving: boolean) => void): () => void {
  let serving = false;
  let timer: NodeJS.Timeout | undefined;
  const update = (): void => {
    const next = lostAfterMs === 0 || monotonic() - consumer.lastContactMs <= lostAfterMs;
    if (next !== serving && !shutdown.aborted) set((serving = next));
  };
  void consumer.caughtUp.then(() => {
    if (shutdown.aborted) return;
    update();
    if (lostAfterMs > 0) timer = setInterval(update, Math.min(1000, lostAfterMs / 4));
  });
  return () => clearInterval(timer);
}

/**
 * The read replica's own series, each read from state the replica keeps anyway when scraped: feed
 * progress (revisions), export cache figures, open streams, and calls refused before a handler.
 */
function registerReadMetrics(metrics: ServiceMetrics, rt: ReadRuntime, consumer: FeedConsumer, monotonic: () => number): void {
  const applied = (): number => rt.model.checkpoint?.revision ?? 0;
  // The head is only reported by progress messages, so a batch applied since can be ahead of it.
  const head = (): number => Math.max(consumer.headRevision, applied());
  metrics.gauge('feed_head_revision', 'The feed\'s head revision as last reported to this replica.', head);
  metrics.gauge('feed_applied_revision', 'The last feed revision applied to the read model (its checkpoint).', applied);
  metrics.gauge('feed_silence_seconds', 'Seconds since the last message from the feed (progress comes every FEED_PROGRESS_INTERVAL).', () =>
    Number.isFinite(consumer.lastContactMs) ? (monotonic() - consumer.lastContactMs) / 1000 : undefined,
  );
  metrics.gauge('feed_lag_revisions', 'Revisions committed on the write side but not yet applied here (head - applied).', () => head() - applied());
  metrics.counter('feed_events_applied_total', 'Feed events applied to the read model since start (snapshot rebuilds not included).', () => rt.model.eventsApplied);
  metrics.counter('export_builds_total', 'Daemon databases built since start.', () => rt.exports.stats().builds);
  metrics.counter('export_cache_hits_total', 'Export requests answered from the cache since start.', () => rt.exports.stats().hits);
  metrics.counter('export_cache_evictions_total', 'Exports evicted from the cache since start (EXPORT_CACHE_BYTES).', () => rt.exports.stats().evictions);
  metrics.gauge('export_cache_bytes', 'Bytes of the exports kept in the cache.', () => rt.exports.stats().bytes);
  metrics.gauge('export_cache_entries', 'Exports kept in the cache.', () => rt.exports.stats().entries);
  metrics.gauge('watch_streams_active', 'Open WatchVersion streams.', () => rt.gauges.activeWatches);
  metrics.gauge('downloads_active', 'DownloadExport streams in progress.', () => rt.gauges.downloads.active);
  metrics.gauge('downloads_reserved_bytes', 'Bytes the DownloadExport streams in progress may hold (counted against DOWNLOADS_MEMORY_BUDGET).', () => rt.gauges.downloads.reservedBytes);
  metrics.labelledCounter('auth_failures_total', 'Daemon calls refused UNAUTHENTICATED, by reason.', 'reason', () => rt.counters.authFailures);
  metrics.counter('export_downloads_busy_total', 'DownloadExport calls refused RESOURCE_EXHAUSTED DOWNLOADS_BUSY (DOWNLOADS_MEMORY_BUDGET held, or DOWNLOADS_MAX_CONCURRENT streams running).', () => rt.counters.downloadsBusy);
  metrics.labelledCounter('export_downloads_total', 'DownloadExport streams started, by what they carried: delta, full, full_base_missing, full_delta_larger.', 'kind', () => rt.counters.downloads);
  metrics.counter('export_delta_builds_total', 'Export deltas built since start.', () => rt.exports.stats().deltaBuilds);
  metrics.labelledCounter('export_http_responses_total', 'Answers of the HTTP origin of exports and deltas (EXPORT_HTTP_ADDR), by status code.', 'code', () => rt.counters.exportHttp);
  metrics.counter('export_http_bytes_total', 'Body bytes of the HTTP origin\'s 200 and 206 answers to GET (their Content-Length; a client that hangs up early counts whole).', () => rt.counters.exportHttpBytes);
  metrics.counter('rate_limited_total', 'Daemon calls refused RESOURCE_EXHAUSTED by the per-device call or log-line limit.', () => rt.counters.rateLimited);
  metrics.counter('auth_throttled_total', 'Daemon calls refused unchecked because their peer address failed authentication too often.', () => rt.counters.authThrottled);
}

/** Entry point: `node services/read/dist/main.js` (npm run start:read). */
runIfEntryPoint(import.meta.url, async () => {
  // Before any call: a replica holds thousands of WatchVersion streams, whose objects outlive
  // young-generation collections, and V8's allocation-site pretenuring then allocates every later
  // call's objects from the same grpc-js and HTTP/2 sites directly in the old generation: dead
  // there, they keep what they point to alive through every scavenge (2.4 MB promoted per
  // scavenge, 6-12 ms each), and CheckVersion cost 1.6-1.9x an empty RPC instead of 1.25x
  // (docs/decisions.md, "Staged rollouts"). Node accepts no such V8 flag in NODE_OPTIONS.
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
  const config = loadReadConfig();
  const logger = serviceLogger(config.LOG_LEVEL, { service: 'read' });
  exitOnFatalErrors(logger);
  // Before the handlers are built: the pipeline adds its tracing step only when tracing is on.
  if (setupTracing('titanbot-read')) logger.info({ endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT }, 'tracing to OTLP');
  const service = await startReadService(config, logger);
  stopOnSignals(logger, async () => {
    await service.stop();
    await stopTracing();
  });
});
