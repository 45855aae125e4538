import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import type { DataKeyring } from '@titanbot/service-kit/secrets/data-keys';
import { entities } from './entities.js';
import { MigrationInitial } from './migrations/migration-0001-initial.js';
import { MigrationTokenLifetimeOnFeed } from './migrations/migration-0002-token-lifetime-on-feed.js';
import { MigrationFeedTransactions } from './migrations/migration-0003-feed-transactions.js';

export type Em = EntityManager;

/** Every migration, in order; committed and applied only by an explicit step (`npm run migrate`). */
const MIGRATIONS = [
  { name: 'Migration0001Initial', class: MigrationInitial },
  { name: 'Migration0002TokenLifetimeOnFeed', class: MigrationTokenLifetimeOnFeed },
  { name: 'Migration0003FeedTransactions', class: MigrationFeedTransactions },
];

/**
 * Opens the ORM on `databaseUrl` (a postgres:// URL). Does not migrate: see `migrate()`.
 * `poolMax` bounds PostgreSQL connections (one more is used by the feed listener). `keyring`
 * seals and opens secret columns; without it, loading or saving an account or Ssh throws.
 */
export async function initOrm(databaseUrl: string, poolMax = 10, keyring?: DataKeyring): Promise<MikroORM> {
  return MikroORM.init({
    clientUrl: databaseUrl,
    entities: entities(keyring),
    extensions: [Migrator],
    migrations: { migrationsList: MIGRATIONS, transactional: true, allOrNothing: true },
    discovery: { disableDynamicFileAccess: true, requireEntitiesArray: true },
    pool: { min: 0, max: poolMax },
    // Timestamps are UTC everywhere; `date` columns stay YYYY-MM-DD strings.
    forceUtcTimezone: true,
    allowGlobalContext: false,
    debug: false,
  });
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
