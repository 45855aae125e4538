import path from 'node:path';
import { duration, flag, logLevel, parseConfig, port, grpcServerLimits } from '@titanbot/service-kit/config';
import { StartupError } from '@titanbot/service-kit/process';
import { z } from 'zod';

const schema = z.object({
  WRITE_GRPC_ADDR: z.string().default('127.0.0.1:50051'),
  ...grpcServerLimits,
  /** PEM certificate chain and key this listener serves TLS with (re-read every TLS_REFRESH_INTERVAL); unset = plaintext. */
  TLS_CERT_FILE: z.string().optional(),
  TLS_KEY_FILE: z.string().optional(),
  /** Plaintext on a non-loopback address (behind a TLS-terminating proxy); refused otherwise. */
  ALLOW_PLAINTEXT: flag.default(false),
  /** How often certificate files are re-read, so renewed ones are served without a restart. */
  TLS_REFRESH_INTERVAL: duration.default(60_000),
  /** CA of the read replicas' client certificates: the reader credential then needs one (mutual TLS). */
  TLS_CLIENT_CA_FILE: z.string().optional(),
  DATABASE_URL: z.string().url().optional(),
  DATA_DIR: z.string().default('.data'),
  /** Port for the embedded PostgreSQL when DATABASE_URL is unset; 0 = any free port. */
  EMBEDDED_PG_PORT: port.default(0),
  /** `vault` or `file`; unset = Vault when VAULT_ADDR is set, else the file store (with a warning). */
  SECRET_STORE: z.enum(['vault', 'file']).optional(),
  VAULT_ADDR: z.string().url().optional(),
  VAULT_TOKEN: z.string().optional(),
  VAULT_MOUNT: z.string().default('secret'),
  VAULT_PATH_PREFIX: z.string().default('titanbot'),
  ADMIN_TOKEN: z.string().min(16).optional(),
  READER_TOKEN: z.string().min(16).optional(),
  ADMIN_TOKEN_GRACE: duration.default(300_000),
  /** false: the admin API takes OAuth 2.0 bearer tokens only (the admin token is refused). */
  ADMIN_TOKEN_ENABLED: flag.default(true),
  /** OpenID Provider whose access tokens (JWT) operators present as `authorization: Bearer`; unset = none accepted. */
  OIDC_ISSUER: z.string().url().optional(),
  /** The `aud` those tokens must carry. */
  OIDC_AUDIENCE: z.string().min(1).optional(),
  /** The claim listing an operator's roles (admin, viewer, token-issuer); `scope` entries titanbot.<role> count too. */
  OIDC_ROLES_CLAIM: z.string().min(1).default('roles'),
  /** Rotate the admin token once its current version is this old; checked every min(this / 10, 60 s). `0` = off. */
  ADMIN_TOKEN_ROTATE_EVERY: duration.default(86_400_000),
  SECRET_REFRESH_INTERVAL: duration.default(30_000),
  TOKEN_DEFAULT_TTL: duration.default(86_400_000),
  TOKEN_MAX_TTL: duration.default(30 * 86_400_000),
  TOKEN_ROTATION_GRACE: duration.default(600_000),
  SSH_PORT_RANGE_START: port.default(18800),
  SSH_SERVER_NAME: z.string().default('titanbot'),
  SSH_SERVER_IP: z.string().default('127.0.0.1'),
  SSH_SERVER_COMMON_PORT: port.default(22),
  FEED_RETENTION: duration.default(7 * 86_400_000),
  FEED_PROGRESS_INTERVAL: duration.default(5_000),
  /** Feed events per Subscribe message; a transaction larger than this spans several messages. */
  FEED_BATCH_EVENTS: z.coerce.number().int().min(1).max(10_000).default(500),
  LOG_RETENTION: duration.default(30 * 86_400_000),
  /** Audit events kept (the audit trail of admin calls that change state). */
  AUDIT_RETENTION: duration.default(365 * 86_400_000),
  /** Devices' status history (ListDeviceStatusChanges) kept this long. */
  STATUS_HISTORY_RETENTION: duration.default(7 * 86_400_000),
  /** A daemon no replica has heard from for this long counts as offline in the fleet view. */
  OFFLINE_AFTER: duration.default(300_000),
  /** Between two checks of the running rollouts' gates (pause, abort, auto-advance). */
  ROLLOUT_GATE_INTERVAL: duration.default(10_000),
  /** Between database probes; health follows PostgreSQL within this plus DATABASE_PROBE_TIMEOUT. */
  DATABASE_PROBE_INTERVAL: duration.default(500),
  /** A probe (or a call's wait for a pooled connection, x5) unanswered this long counts as the database being down. */
  DATABASE_PROBE_TIMEOUT: duration.default(1_000),
  /** host:port serving Prometheus metrics at GET /metrics (port 0 = any); unset = no metrics server. */
  METRICS_ADDR: z.string().regex(/^\S*:\d{1,5}$/, 'host:port').optional(),
  LOG_LEVEL: logLevel,
});

export type WriteConfig = z.infer<typeof schema>;

/**
 * Parses the write service's settings from `env` once, at start-up. Throws an Error listing every
 * invalid variable (never their values: some are secrets).
 */
export function loadWriteConfig(env: NodeJS.ProcessEnv = process.env): WriteConfig {
  const config = parseConfig(schema, env);
  if (config.VAULT_ADDR && !config.VAULT_TOKEN) throw new StartupError('invalid configuration: VAULT_TOKEN is required with VAULT_ADDR');
  if (config.OIDC_ISSUER && !config.OIDC_AUDIENCE) throw new StartupError('invalid configuration: OIDC_AUDIENCE is required with OIDC_ISSUER');
  if (!config.ADMIN_TOKEN_ENABLED && !config.OIDC_ISSUER) throw new StartupError('invalid configuration: ADMIN_TOKEN_ENABLED=false needs OIDC_ISSUER (no operator could sign in)');
  if (config.SECRET_STORE === 'vault' && !config.VAULT_ADDR) throw new StartupError('invalid configuration: VAULT_ADDR is required with SECRET_STORE=vault');
  return { ...config, DATA_DIR: path.resolve(config.DATA_DIR) };
}
