import { exitOnFatalErrors, exitOnStartupFailure, serviceLogger } from '@titanbot/service-kit/process';
import type { Logger } from 'pino';
import { loadWriteConfig } from './config.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { initOrm, migrate } from './db/orm.js';
import { embeddedPostgresDir } from './main.js';

/**
 * `npm run migrate`: applies pending migrations to DATABASE_URL, or to the embedded PostgreSQL
 * under DATA_DIR when DATABASE_URL is unset. Exits non-zero on failure (migrations are
 * all-or-nothing).
 */
async function main(logger: Logger): Promise<void> {
  const config = loadWriteConfig();
  logger.level = config.LOG_LEVEL;
  const embedded = config.DATABASE_URL ? undefined : await startEmbeddedPostgres(embeddedPostgresDir(config), config.EMBEDDED_PG_PORT, logger);
  try {
    const orm = await initOrm(config.DATABASE_URL ?? embedded!.url, { poolMax: 2, logger });
    try {
      const applied = await migrate(orm);
      logger.info({ applied }, applied.length ? 'migrations applied' : 'schema up to date');
    } finally {
      await orm.close();
    }
  } finally {
    await embedded?.stop();
  }
}

const logger = serviceLogger('info', { service: 'migrate' });
exitOnFatalErrors(logger);
main(logger).catch((err: unknown) => exitOnStartupFailure(logger, err));
