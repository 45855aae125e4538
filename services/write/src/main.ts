import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { AccountServiceService } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { AdminTokenServiceService } from '@titanbot/contracts/titanbot/admin/v1/admin_token_service';
import { AuditServiceService } from '@titanbot/contracts/titanbot/admin/v1/audit_service';
import { DaemonTokenServiceService } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { DataKeyServiceService } from '@titanbot/contracts/titanbot/admin/v1/data_key_service';
import { DeviceServiceService } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { EmpireDateServiceService } from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import { FleetServiceService } from '@titanbot/contracts/titanbot/admin/v1/fleet_service';
import { HabitServiceService } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { RolloutServiceService } from '@titanbot/contracts/titanbot/admin/v1/rollout_service';
import { LegionServiceService } from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { LogServiceService } from '@titanbot/contracts/titanbot/admin/v1/log_service';
import { startGrpcServer, stopGrpcServer } from '@titanbot/service-kit/grpc-server';
import { ServiceMetrics, startMetricsServer, type MetricsServer } from '@titanbot/service-kit/metrics';
import { exitOnFatalErrors, runIfEntryPoint, serviceLogger, stopOnSignals } from '@titanbot/service-kit/process';
import { clientCertificateCheck, serverCredentials } from '@titanbot/service-kit/tls';
import { setupTracing, stopTracing } from '@titanbot/service-kit/tracing';
import { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import { openSecretStore, type SecretStore } from '@titanbot/service-kit/secrets/open';
import type { Logger } from 'pino';
import type { DomainSettings } from './app/context.js';
import { watchDatabaseHealth } from './app/database-health.js';
import { getFleetSummary, type FleetSummary } from './app/fleet.js';
import { startHousekeeping } from './app/housekeeping.js';
import { startRolloutGates } from './app/rollout-gates.js';
import { warnOfUnreadableKeyPairs } from './app/ssh-keys.js';
import { countByState } from './app/rollouts.js';
import { LogWriter } from './app/log-writer.js';
import { loadWriteConfig, type WriteConfig } from './config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './db/embedded-postgres.js';
import { FeedNotifier, readFeedState } from './db/feed-store.js';
import { initOrm } from './db/orm.js';
import { accountService } from './grpc/admin/account-service.js';
import { adminTokenService } from './grpc/admin/admin-token-service.js';
import { auditService } from './grpc/admin/audit-service.js';
import { daemonTokenService } from './grpc/admin/daemon-token-service.js';
import { dataKeyService } from './grpc/admin/data-key-service.js';
import { deviceService } from './grpc/admin/device-service.js';
import { empireDateService } from './grpc/admin/empire-date-service.js';
import { fleetService } from './grpc/admin/fleet-service.js';
import { habitService } from './grpc/admin/habit-service.js';
import { rolloutService } from './grpc/admin/rollout-service.js';
import { legionService } from './grpc/admin/legion-service.js';
import { logService } from './grpc/admin/log-service.js';
import { Authenticator, type OperatorSignIn } from './grpc/auth.js';
import { OidcVerifier } from './grpc/oidc.js';
import { changeFeedService, changeFeedServiceDefinition } from './grpc/feed-service.js';
import type { Runtime } from './grpc/handler.js';
import { RotatingCredential } from './secrets/rotating-credential.js';

export interface WriteService {
  /** host:port the gRPC server listens on. */
  address: string;
  /** host:port serving GET /metrics; undefined when METRICS_ADDR is unset. */
  metricsAddress: string | undefined;
  /** The reader credential's current value, for a launcher that starts a read replica beside it (`npm start`). */
  readerCredential(): string;
  /** Graceful stop: NOT_SERVING, end feed streams, drain calls (5 s at most), close the pool. */
  stop(): Promise<void>;
}

/** Proto files the write service serves, for server reflection (grpcurl). */
const WRITE_PROTOS = [
  'titanbot/admin/v1/account_service.proto',
  'titanbot/admin/v1/admin_token_service.proto',
  'titanbot/admin/v1/audit_service.proto',
  'titanbot/admin/v1/daemon_token_service.proto',
  'titanbot/admin/v1/data_key_service.proto',
  'titanbot/admin/v1/device_service.proto',
  'titanbot/admin/v1/empire_date_service.proto',
  'titanbot/admin/v1/fleet_service.proto',
  'titanbot/admin/v1/habit_service.proto',
  'titanbot/admin/v1/rollout_service.proto',
  'titanbot/admin/v1/legion_service.proto',
  'titanbot/admin/v1/log_service.proto',
  'titanbot/feed/v1/change_feed_service.proto',
];

/** Where DATABASE_URL-less runs keep the embedded cluster. */
export const embeddedPostgresDir = (config: WriteConfig): string => path.join(config.DATA_DIR, 'postgres');

/** `host:port/database` of a postgres:// URL (never its credentials), and whether it is the embedded one. */
const describeDatabase = (url: string, embedded: boolean): string => {
  const { host, pathname } = new URL(url);
  return `${host}${pathname}${embedded ? ' (embedded)' : ''}`;
};

/** The secret store: Vault KV v2 when VAULT_ADDR is set, else files under DATA_DIR/secrets. */
const openWriteSecretStore = (config: WriteConfig, logger: Logger): SecretStore =>
  openSecretStore({ ...config, SECRETS_DIR: path.join(config.DATA_DIR, 'secrets') }, logger);

/**
 * Composition root: config -> database (embedded unless DATABASE_URL) -> ORM -> credentials ->
 * use cases -> gRPC server. Health is SERVING while the database answers and no migration is
 * pending (probed every DATABASE_PROBE_INTERVAL). Does not migrate: run `npm run migrate` (npm start does).
 */
export async function startWriteService(config: WriteConfig, logger: Logger, clock: () => Date = () => new Date()): Promise<WriteService> {
  // First: a listener that may not start (plaintext off loopback, unreadable certificates) opens nothing.
  const serverTls = serverCredentials(
    config.WRITE_GRPC_ADDR,
    {
      certFile: config.TLS_CERT_FILE,
      keyFile: config.TLS_KEY_FILE,
      clientCaFile: config.TLS_CLIENT_CA_FILE,
      allowPlaintext: config.ALLOW_PLAINTEXT,
      refreshMs: config.TLS_REFRESH_INTERVAL,
    },
    logger,
  );
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(embeddedPostgresDir(config), config.EMBEDDED_PG_PORT, logger);
    databaseUrl = embedded.url;
  }
  const store = openWriteSecretStore(config, logger);
  // Secret columns are sealed under data keys from the store; created here on first start.
  const keyring = new DataKeyring(store, logger);
  await keyring.init(true);
  const keyRefresh = setInterval(() => void keyring.refresh().catch((err) => logger.warn({ err }, 'data keys: refresh failed')), config.SECRET_REFRESH_INTERVAL);
  keyRefresh.unref();
  const orm = await initOrm(databaseUrl, { keyring, connectTimeoutMs: 5 * config.DATABASE_PROBE_TIMEOUT, logger });
  // Prefixed, as daemon tokens (tbd_) are: a bare base64url token begins with '-' one time in 64,
  // which a command line takes for a flag (`titanctl --token -x…` is refused as ambiguous).
  const generate = (prefix: string) => (): string => `${prefix}_${randomBytes(32).toString('base64url')}`;
  const credential = (name: string, prefix: string, bootstrapValue: string | undefined): RotatingCredential =>
    new RotatingCredential({
      store,
      name,
      generate: generate(prefix),
      graceMs: config.ADMIN_TOKEN_GRACE,
      refreshIntervalMs: config.SECRET_REFRESH_INTERVAL,
      logger,
      ...(bootstrapValue ? { bootstrapValue } : {}),
    });
  const admin = credential('admin-token', 'tba', config.ADMIN_TOKEN);
  const reader = credential('reader-token', 'tbr', config.READER_TOKEN);
  await admin.init();
  await reader.init();
  admin.start();
  reader.start();
  // Only the admin token rotates on a schedule: read replicas take the reader credential from their
  // environment and could not follow a rotation.
  admin.startRotation(config.ADMIN_TOKEN_ROTATE_EVERY);

  const settings: DomainSettings = {
    sshPortRangeStart: config.SSH_PORT_RANGE_START,
    sshServerName: config.SSH_SERVER_NAME,
    sshServerIp: config.SSH_SERVER_IP,
    sshServerCommonPort: config.SSH_SERVER_COMMON_PORT,
    tokenDefaultTtlMs: config.TOKEN_DEFAULT_TTL,
    tokenMaxTtlMs: config.TOKEN_MAX_TTL,
    tokenRotationGraceMs: config.TOKEN_ROTATION_GRACE,
    offlineAfterMs: config.OFFLINE_AFTER,
  };
  const metrics = new ServiceMetrics();
  metrics.gauge('feed_head_revision', 'The change feed\'s last committed revision (feed_state), read from the database when scraped.', async () => {
    try {
      return (await readFeedState(orm.em.fork())).headRevision;
    } catch (err) {
      logger.warn({ err }, 'metrics: could not read the feed head revision');
      return undefined;
    }
  });
  // The fleet view, computed when scraped (one aggregate query, shared by both fleet gauges of a
  // scrape); a database that does not answer keeps the last values.
  let fleetScrape: { at: number; summary: Promise<FleetSummary | undefined> } | undefined;
  const fleetNow = (): Promise<FleetSummary | undefined> => {
    if (!fleetScrape || Date.now() - fleetScrape.at > 1_000) {
      const summary = getFleetSummary({ em: orm.em.fork(), now: clock(), settings }, settings.offlineAfterMs).catch((err: unknown) => {
        logger.warn({ err }, 'metrics: could not read the fleet summary');
        return undefined;
      });
      fleetScrape = { at: Date.now(), summary };
    }
    return fleetScrape.summary;
  };
  metrics.labelledGauge('fleet_devices', 'Devices by state in the fleet view (current, behind, failing, offline; OFFLINE_AFTER).', 'state', async () => {
    const s = await fleetNow();
    return s && { current: s.current, behind: s.behind, failing: s.failing, offline: s.offline };
  });
  metrics.gauge('fleet_oldest_behind_seconds', 'How long the longest-waiting behind or failing device has waited for its scope\'s current version.', async () => {
    const s = await fleetNow();
    return s && s.oldestBehindMs / 1000;
  });
  metrics.labelledGauge('rollouts', 'Rollouts by state (created, running, paused, completed, aborted), read from the database when scraped.', 'state', async () => {
    try {
      return await countByState({ em: orm.em.fork(), now: clock(), settings });
    } catch (err) {
      logger.warn({ err }, 'metrics: could not count the rollouts');
      return undefined;
    }
  });
  const signIn: OperatorSignIn = {
    adminTokenEnabled: config.ADMIN_TOKEN_ENABLED,
    ...(config.OIDC_ISSUER && config.OIDC_AUDIENCE ? { oidc: new OidcVerifier({ issuer: config.OIDC_ISSUER, audience: config.OIDC_AUDIENCE, rolesClaim: config.OIDC_ROLES_CLAIM }) } : {}),
  };
  const readerCertificate = config.TLS_CLIENT_CA_FILE ? clientCertificateCheck(config.TLS_CLIENT_CA_FILE, config.TLS_REFRESH_INTERVAL) : undefined;
  const rt: Runtime = { orm, logger, settings, clock, keyring, metrics, auth: new Authenticator(admin, reader, orm, settings, signIn, readerCertificate), logs: new LogWriter(orm, clock) };
  const notifier = new FeedNotifier(databaseUrl, logger);
  await notifier.start();
  const shutdown = new AbortController();

  const grpc = await startGrpcServer(config.WRITE_GRPC_ADDR, serverTls, WRITE_PROTOS, [
    { definition: DeviceServiceService, implementation: deviceService(rt) },
    { definition: AccountServiceService, implementation: accountService(rt) },
    { definition: LegionServiceService, implementation: legionService(rt) },
    { definition: HabitServiceService, implementation: habitService(rt) },
    { definition: RolloutServiceService, implementation: rolloutService(rt) },
    { definition: EmpireDateServiceService, implementation: empireDateService(rt) },
    { definition: DaemonTokenServiceService, implementation: daemonTokenService(rt) },
    { definition: LogServiceService, implementation: logService(rt) },
    { definition: AdminTokenServiceService, implementation: adminTokenService(rt, admin) },
    { definition: DataKeyServiceService, implementation: dataKeyService(rt) },
    { definition: FleetServiceService, implementation: fleetService(rt) },
    { definition: AuditServiceService, implementation: auditService(rt) },
    {
      definition: changeFeedServiceDefinition(),
      implementation: changeFeedService(rt, notifier, {
        batchSize: config.FEED_BATCH_EVENTS,
        snapshotPageRows: 500,
        progressIntervalMs: config.FEED_PROGRESS_INTERVAL,
        shutdown: shutdown.signal,
      }),
    },
  ], { maxConcurrentStreams: config.GRPC_MAX_CONCURRENT_STREAMS, requestMessageTimeoutMs: config.GRPC_REQUEST_MESSAGE_TIMEOUT });
  const address = `${config.WRITE_GRPC_ADDR.replace(/:\d+$/, '')}:${grpc.port}`;

  // SERVING only while the database answers with the schema this code expects.
  const stopHealth = watchDatabaseHealth(orm, logger, {
    everyMs: config.DATABASE_PROBE_INTERVAL,
    timeoutMs: config.DATABASE_PROBE_TIMEOUT,
    onChange: (serving) => grpc.health.setStatus('', serving ? 'SERVING' : 'NOT_SERVING'),
  });

  const stopHousekeeping = startHousekeeping(orm, logger, {
    feedRetentionMs: config.FEED_RETENTION,
    logRetentionMs: config.LOG_RETENTION,
    auditRetentionMs: config.AUDIT_RETENTION,
    statusHistoryRetentionMs: config.STATUS_HISTORY_RETENTION,
    everyMs: 3_600_000,
    clock,
  });

  const stopRolloutGates = startRolloutGates(orm, logger, { everyMs: config.ROLLOUT_GATE_INTERVAL, clock, settings });

  let metricsServer: MetricsServer | undefined;
  if (config.METRICS_ADDR) {
    metricsServer = await startMetricsServer(config.METRICS_ADDR, metrics.registry);
    logger.info({ address: metricsServer.address }, 'metrics listening at /metrics');
  }

  logger.info({ address, database: describeDatabase(databaseUrl, embedded !== undefined) }, 'write service listening');
  // Once, after serving: it need not delay the start.
  void warnOfUnreadableKeyPairs(orm.em.fork(), logger).catch((err: unknown) => logger.warn({ err }, 'device SSH keys: could not check them'));
  return {
    address,
    metricsAddress: metricsServer?.address,
    readerCredential: () => reader.currentValue(),
    async stop() {
      stopHealth();
      grpc.health.setStatus('', 'NOT_SERVING');
      stopHousekeeping();
      stopRolloutGates();
      clearInterval(keyRefresh);
      shutdown.abort();
      await stopGrpcServer(grpc.server, 5000);
      await metricsServer?.close();
      await admin.stopRotation();
      admin.stop();
      reader.stop();
      await notifier.stop();
      await orm.close();
      await embedded?.stop();
      logger.info('write service stopped');
    },
  };
}

/** Entry point: `node services/write/dist/main.js` (npm run start:write). */
runIfEntryPoint(import.meta.url, async () => {
  const config = loadWriteConfig();
  const logger = serviceLogger(config.LOG_LEVEL, { service: 'write' });
  exitOnFatalErrors(logger);
  // Before the handlers are built: the pipeline adds its tracing step only when tracing is on.
  if (setupTracing('titanbot-write')) logger.info({ endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT }, 'tracing to OTLP');
  const service = await startWriteService(config, logger);
  stopOnSignals(logger, async () => {
    await service.stop();
    await stopTracing();
  });
});
