import { stripVTControlCharacters } from 'node:util';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type EntityManager, type Logger as OrmLogger } from '@mikro-orm/postgresql';
import { pino, type Logger } from 'pino';
import type { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import { entities } from './entities.js';
import { MigrationInitial } from './migrations/migration-0001-initial.js';
import { MigrationTokenLifetimeOnFeed } from './migrations/migration-0002-token-lifetime-on-feed.js';
import { MigrationFeedTransactions } from './migrations/migration-0003-feed-transactions.js';
import { MigrationLogPartitions } from './migrations/migration-0004-log-partitions.js';
import { MigrationFleetStatus } from './migrations/migration-0005-fleet-status.js';
import { MigrationFeedTraceContext } from './migrations/migration-0006-feed-trace-context.js';
import { MigrationLegacyTokens } from './migrations/migration-0008-legacy-tokens.js';
import { MigrationAuditEvents } from './migrations/migration-0007-audit-events.js';
import { MigrationDeviceStatusChanges } from './migrations/migration-0009-device-status-changes.js';
import { MigrationRollouts } from './migrations/migration-0010-rollouts.js';

export type Em = EntityManager;

/** Every migration, in order; committed and applied only by an explicit step (`npm run migrate`). */
const MIGRATIONS = [
  { name: 'Migration0001Initial', class: MigrationInitial },
  { name: 'Migration0002TokenLifetimeOnFeed', class: MigrationTokenLifetimeOnFeed },
  { name: 'Migration0003FeedTransactions', class: MigrationFeedTransactions },
  { name: 'Migration0004LogPartitions', class: MigrationLogPartitions },
  { name: 'Migration0005FleetStatus', class: MigrationFleetStatus },
  { name: 'Migration0006FeedTraceContext', class: MigrationFeedTraceContext },
  { name: 'Migration0007AuditEvents', class: MigrationAuditEvents },
  { name: 'Migration0008LegacyTokens', class: MigrationLegacyTokens },
  { name: 'Migration0009DeviceStatusChanges', class: MigrationDeviceStatusChanges },
  { name: 'Migration0010Rollouts', class: MigrationRollouts },
];

export interface OrmOptions {
  /** PostgreSQL connections at most (one more is used by the feed listener). Default 10. */
  poolMax?: number;
  /** Seals and opens secret columns; without it, loading or saving an account or Ssh throws. */
  keyring?: DataKeyring;
  /**
   * Bounds both a new connection and a call's wait for a pooled one (ms), so a database that is
   * down fails calls (DATABASE_UNAVAILABLE) instead of holding them. Default 5000.
   */
  connectTimeoutMs?: number;
  /** Where the migrator's and the driver's messages go, as JSON lines. Default: nowhere. */
  logger?: Logger;
}

/** Opens the ORM on `databaseUrl` (a postgres:// URL). Does not migrate: see `migrate()`. */
export async function initOrm(databaseUrl: string, options: OrmOptions = {}): Promise<MikroORM> {
  const { poolMax = 10, keyring, connectTimeoutMs = 5_000, logger = pino({ level: 'silent' }) } = options;
  return MikroORM.init({
    clientUrl: databaseUrl,
    entities: entities(keyring),
    extensions: [Migrator],
    migrations: { migrationsList: MIGRATIONS, transactional: true, allOrNothing: true },
    discovery: { disableDynamicFileAccess: true, requireEntitiesArray: true },
    pool: { min: 0, max: poolMax },
    driverOptions: {
      acquireConnectionTimeout: connectTimeoutMs,
      connection: { connectionTimeoutMillis: connectTimeoutMs },
      // knex would write these to the console, outside the JSON log.
      log: {
        warn: (message: unknown) => logger.warn({ component: 'knex' }, String(message)),
        error: (message: unknown) => logger.error({ component: 'knex' }, String(message)),
        deprecate: (message: unknown) => logger.warn({ component: 'knex' }, String(message)),
        debug: (message: unknown) => logger.debug({ component: 'knex' }, String(message)),
      },
    },
    loggerFactory: () => ormLogger(logger),
    // Timestamps are UTC everywhere; `date` columns stay YYYY-MM-DD strings.
    forceUtcTimezone: true,
    allowGlobalContext: false,
    debug: false,
  });
}

/**
 * MikroORM's messages as pino lines instead of coloured console text: the ones it logs whatever
 * the debug mode (the migrator's "Applied ..."), warnings and errors; discovery and query chatter
 * stays off (debug: false).
 */
function ormLogger(logger: Logger): OrmLogger {
  const plain = (message: string): string => stripVTControlCharacters(message);
  return {
    log: (namespace, message, context) => {
      if (context?.enabled) logger.info({ component: namespace }, plain(message));
    },
    warn: (namespace, message) => logger.warn({ component: namespace }, plain(message)),
    error: (namespace, message) => logger.error({ component: namespace }, plain(message)),
    logQuery: () => undefined,
    setDebugMode: () => undefined,
    isEnabled: () => false,
  };
}

/** Applies pending migrations; returns their names. */
export async function migrate(orm: MikroORM): Promise<string[]> {
  const applied = await orm.getMigrator().up();
  return applied.map((m) => m.name);
}

/** Names of migrations not yet applied (health stays NOT_SERVING while any remain). */
export async function pendingMigrations(orm: MikroORM): Promise<string[]> {
  return (await orm.getMigrator().getPendingMigrations()).map((m) => m.name);
}
