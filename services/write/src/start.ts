import path from 'node:path';
import { pino } from 'pino';
import { loadWriteConfig } from './config.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { initOrm, migrate } from './db/orm.js';
import { embeddedPostgresDir, startWriteService } from './main.js';

/**
 * `npm start`: the whole system on one machine with embedded defaults. Starts PostgreSQL under
 * DATA_DIR unless DATABASE_URL is set, applies migrations, starts the write service, and prints
 * where the admin token is kept and how to issue a daemon token. Stops everything on SIGTERM.
 */
async function main(): Promise<void> {
  const config = loadWriteConfig();
  const logger = pino({ level: config.LOG_LEVEL, base: {} });
  const embedded = config.DATABASE_URL ? undefined : await startEmbeddedPostgres(embeddedPostgresDir(config), config.EMBEDDED_PG_PORT, logger);
  const databaseUrl = config.DATABASE_URL ?? embedded!.url;
  const orm = await initOrm(databaseUrl, 2);
  logger.info({ applied: await migrate(orm) }, 'migrations');
  await orm.close();

  const write = await startWriteService({ ...config, DATABASE_URL: databaseUrl }, logger.child({ service: 'write' }));
  const tokenAt = config.VAULT_ADDR
    ? `Vault KV v2 ${config.VAULT_ADDR} ${config.VAULT_MOUNT}/${config.VAULT_PATH_PREFIX}/admin-token (field "current")`
    : `${path.join(config.DATA_DIR, 'secrets', 'admin-token.json')} (field data.current)`;
  process.stdout.write(
    [
      '',
      `Titanbot write service (admin + feed API): ${write.address}`,
      `Admin token: ${tokenAt}`,
      'Issue a daemon token for a device:',
      `  grpcurl -plaintext -H "x-api-key: $ADMIN_TOKEN" -d '{"device":{"physical_id":7}}' ${write.address} titanbot.admin.v1.DeviceService/CreateDevice`,
      `  grpcurl -plaintext -H "x-api-key: $ADMIN_TOKEN" -d '{"device_uuid":"<uuid>"}' ${write.address} titanbot.admin.v1.DaemonTokenService/IssueDaemonToken`,
      '',
    ].join('\n'),
  );

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'shutting down');
      write
        .stop()
        .then(() => embedded?.stop())
        .then(
          () => process.exit(0),
          (err) => (logger.error({ err }, 'shutdown failed'), process.exit(1)),
        );
    });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
