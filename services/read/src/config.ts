import path from 'node:path';
import { byteSize, duration, flag, logLevel, parseConfig, port, grpcServerLimits } from '@titanbot/service-kit/config';
import { StartupError } from '@titanbot/service-kit/process';
import { z } from 'zod';

const schema = z.object({
  READ_GRPC_ADDR: z.string().default('127.0.0.1:50052'),
  ...grpcServerLimits,
  // host:port of the original system's daemon HTTP API (docs/legacy.md); unset = not served.
  LEGACY_HTTP_ADDR: z.string().regex(/^\S*:\d{1,5}$/, 'host:port').optional(),
  /** PEM certificate chain and key this listener serves TLS with (re-read every TLS_REFRESH_INTERVAL); unset = plaintext. */
  TLS_CERT_FILE: z.string().optional(),
  TLS_KEY_FILE: z.string().optional(),
  /** Plaintext on a non-loopback address (behind a TLS-terminating proxy); refused otherwise. */
  ALLOW_PLAINTEXT: flag.default(false),
  /** How often certificate files are re-read, so renewed ones are served without a restart. */
  TLS_REFRESH_INTERVAL: duration.default(60_000),

  /** host:port of the write service's feed API. */
  WRITE_SERVICE_URL: z.string().default('127.0.0.1:50051'),
  /** TLS toward the write service: the CA it is verified with (set = TLS), and this replica's client certificate and key (mutual TLS). */
  WRITE_SERVICE_TLS_CA_FILE: z.string().optional(),
  WRITE_SERVICE_TLS_CERT_FILE: z.string().optional(),
  WRITE_SERVICE_TLS_KEY_FILE: z.string().optional(),
  /** The reader credential the write service issued (its secret store's `reader-token`). */
  READER_TOKEN: z.string().min(16, 'the reader credential (at least 16 characters) is required'),
  /** The read model and export cache live in DATA_DIR/read/{model,exports}; one DATA_DIR per replica. */
  DATA_DIR: z.string().default('.data'),
  EXPORT_CACHE_BYTES: byteSize.default(256 * 1024 * 1024),
  /** Bytes per DownloadExport chunk message (at most 1 MiB, well under the 4 MiB message limit). */
  EXPORT_CHUNK_BYTES: byteSize.pipe(z.number().int().min(1024).max(1024 * 1024)).default(128 * 1024),
  /** What DownloadExport streams may hold in memory together (bytes): each reserves its payload, at most three EXPORT_CHUNK_BYTES, plus 48 KiB. */
  DOWNLOADS_MEMORY_BUDGET: byteSize.default(192 * 1024 * 1024),
  /** DownloadExport streams served at once, whatever they hold; more are RESOURCE_EXHAUSTED DOWNLOADS_BUSY. Unset: DOWNLOADS_MEMORY_BUDGET alone decides. */
  DOWNLOADS_MAX_CONCURRENT: z.coerce.number().int().min(1).optional(),
  /** The least mean RetryInfo delay of DOWNLOADS_BUSY (longer while many daemons wait: RetryPacer); each is spread from half to one and a half times the mean. */
  DOWNLOADS_RETRY_DELAY: duration.default(2_000),
  /**
   * Downloads a CDN can carry (docs/architecture.md, "Downloads through a CDN"): host:port of this
   * replica's HTTP origin of content-addressed exports and deltas (TLS_* and ALLOW_PLAINTEXT apply),
   * and the base URL daemons fetch them from (the CDN, or the origin itself). Set both, or neither.
   */
  EXPORT_HTTP_ADDR: z.string().regex(/^\S*:\d{1,5}$/, 'host:port').optional(),
  EXPORT_PUBLIC_BASE_URL: z
    .string()
    .url()
    .refine((url) => /^https?:$/.test(new URL(url).protocol) && !new URL(url).search && !new URL(url).hash, 'an http(s) URL without query or fragment')
    .transform((url) => url.replace(/\/+$/, ''))
    .optional(),
  /** How long a signed download URL stays valid. */
  EXPORT_URL_TTL: duration.default(5 * 60_000),
  // A delta is sent instead of the file only when at most this fraction of the file's size.
  DELTA_MAX_RATIO: z.coerce.number().min(0).max(1).default(0.5),
  BACKEND_PUBLIC_KEY: z.string().default(''),
  /** Where the data keys that decrypt account passwords and SSH private keys are read from. */
  /** `vault` or `file`; unset = Vault when VAULT_ADDR is set, else the file store (with a warning). */
  SECRET_STORE: z.enum(['vault', 'file']).optional(),
  VAULT_ADDR: z.string().url().optional(),
  VAULT_TOKEN: z.string().optional(),
  VAULT_MOUNT: z.string().default('secret'),
  VAULT_PATH_PREFIX: z.string().default('titanbot'),
  /** The file secret store when VAULT_ADDR is unset; default DATA_DIR/secrets (the write service's, under npm start). */
  SECRETS_DIR: z.string().optional(),
  SSH_SERVER_NAME: z.string().default('titanbot'),
  SSH_SERVER_IP: z.string().default('127.0.0.1'),
  SSH_SERVER_COMMON_PORT: port.default(22),
  FEED_RETRY_BASE: duration.default(250),
  FEED_RETRY_MAX: duration.default(10_000),
  /**
   * A replica that has heard nothing from the feed for this long reports NOT_SERVING (its data may
   * be that old), until the feed answers again. `0` (default) = keep serving the last applied
   * state however long the write service is away: daemons keep a stale file rather than none.
   */
  FEED_LOST_AFTER: duration.default(0),
  /** Between batches of daemon statuses sent to the write service (fleet view). */
  STATUS_REPORT_INTERVAL: duration.default(2_000),
  /** A daemon's contact is sent again once it is this old, while it keeps calling or watching. */
  STATUS_CONTACT_REFRESH: duration.default(30_000),
  /** How this replica names itself in the fleet view; default its listen address. */
  REPLICA_NAME: z.string().min(1).max(200).optional(),
  /** Deadline of WriteLogs and RotateToken calls forwarded to the write service. */
  FORWARD_TIMEOUT: duration.default(5_000),
  /** Per daemon token: calls per second refilled into its bucket (streams cost one call when opened). */
  DAEMON_RPS: z.coerce.number().positive().default(50),
  /** Per daemon token: calls that may be made at once before DAEMON_RPS paces them. */
  DAEMON_BURST: z.coerce.number().int().min(1).default(100),
  /** Per device: open WatchVersion streams at once on this replica (a daemon needs one per scope it follows). */
  DAEMON_MAX_WATCHES: z.coerce.number().int().min(1).default(4),
  /** Per device: log lines per second refilled into its log bucket (WriteLogs and the legacy log routes charge one per line). */
  DAEMON_LOG_LINES_PER_SECOND: z.coerce.number().positive().default(100),
  /** Per device: log lines that may be sent at once; at least one full WriteLogs call (1,000 lines). */
  DAEMON_LOG_LINES_BURST: z.coerce.number().int().min(1000, 'at least 1000: one full WriteLogs call').default(1000),
  /** Per peer address: failed authentications per second refilled into its bucket; once it is empty, calls from the address are refused unchecked. */
  AUTH_FAILURES_PER_SECOND: z.coerce.number().positive().default(1),
  /** Per peer address: failed authentications allowed at once before AUTH_FAILURES_PER_SECOND paces them. */
  AUTH_FAILURES_BURST: z.coerce.number().int().min(1).default(20),
  /** How long the legacy HTTP API waits for a whole request (headers and body) before 408. */
  LEGACY_HTTP_REQUEST_TIMEOUT: duration.default(30_000),
  /** host:port serving Prometheus metrics at GET /metrics (port 0 = any); unset = no metrics server. */
  METRICS_ADDR: z.string().regex(/^\S*:\d{1,5}$/, 'host:port').optional(),
  LOG_LEVEL: logLevel,
});

export type ReadConfig = z.infer<typeof schema> & { SECRETS_DIR: string };

/** Parses the read service's settings from `env` once; throws an Error naming every bad variable. */
export function loadReadConfig(env: NodeJS.ProcessEnv = process.env): ReadConfig {
  const config = parseConfig(schema, env);
  if (config.VAULT_ADDR && !config.VAULT_TOKEN) throw new StartupError('invalid configuration: VAULT_TOKEN is required with VAULT_ADDR');
  if (Boolean(config.EXPORT_HTTP_ADDR) !== Boolean(config.EXPORT_PUBLIC_BASE_URL)) {
    throw new StartupError('invalid configuration: EXPORT_HTTP_ADDR and EXPORT_PUBLIC_BASE_URL go together (the origin, and where daemons reach it)');
  }
  if (config.SECRET_STORE === 'vault' && !config.VAULT_ADDR) throw new StartupError('invalid configuration: VAULT_ADDR is required with SECRET_STORE=vault');
  const dataDir = path.resolve(config.DATA_DIR);
  return { ...config, DATA_DIR: dataDir, SECRETS_DIR: path.resolve(config.SECRETS_DIR ?? path.join(dataDir, 'secrets')) };
}
