import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadWriteConfig } from './config.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { initOrm, migrate } from './db/orm.js';
import { embeddedPostgresDir, openWriteSecretStore, startWriteService } from './main.js';

/** `host:port` with the port one higher (port 0 stays 0: any free port). */
const nextPort = (address: string): string => address.replace(/:(\d+)$/, (_m, p: string) => `:${Number(p) === 0 ? 0 : Number(p) + 1}`);

/** The read service's entry point, built beside this one by `npm run build`. */
const READ_MAIN = fileURLToPath(new URL('../../read/dist/main.js', import.meta.url));

/**
 * `npm start`: the whole system on one machine with embedded defaults. Starts PostgreSQL under
 * DATA_DIR unless DATABASE_URL is set, applies migrations, starts the write service in this
 * process and one read replica as a child process (its own process, as in production, with the
 * reader credential from the secret store), and prints where the admin token is kept and how a
 * daemon syncs. Stops everything on SIGTERM or SIGINT; if the replica dies, so does the system.
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
  const reader = await openWriteSecretStore(config, logger).read('reader-token');
  const read = spawn(process.execPath, [READ_MAIN], {
    stdio: 'inherit',
    env: {
      ...process.env,
      WRITE_SERVICE_URL: write.address,
      READER_TOKEN: reader!.data['current'],
      DATA_DIR: config.DATA_DIR,
      // One METRICS_ADDR for `npm start`: the write service takes it, the replica the next port.
      ...(config.METRICS_ADDR ? { METRICS_ADDR: nextPort(config.METRICS_ADDR) } : {}),
    },
  });
  const readExited = once(read, 'exit');
  const readAddress = process.env.READ_GRPC_ADDR ?? '127.0.0.1:50052';
  const tokenAt = config.VAULT_ADDR
    ? `Vault KV v2 ${config.VAULT_ADDR} ${config.VAULT_MOUNT}/${config.VAULT_PATH_PREFIX}/admin-token (field "current")`
    : `${path.join(config.DATA_DIR, 'secrets', 'admin-token.json')} (field data.current)`;
  process.stdout.write(
    [
      '',
      `Titanbot write service (admin + feed API): ${write.address}`,
      `Titanbot read service (daemon API):        ${readAddress}`,
      `Admin token: ${tokenAt}`,
      'Issue a daemon token for a device:',
      `  grpcurl -plaintext -H "x-api-key: $ADMIN_TOKEN" -d '{"device":{"physical_id":7}}' ${write.address} titanbot.admin.v1.DeviceService/CreateDevice`,
      `  grpcurl -plaintext -H "x-api-key: $ADMIN_TOKEN" -d '{"device_uuid":"<uuid>"}' ${write.address} titanbot.admin.v1.DaemonTokenService/IssueDaemonToken`,
      'Keep a daemon database current (token in token.txt):',
      `  npx titanbot-daemon sync --watch --server ${readAddress} --token-file token.txt --db titanbotd.sqlite --logical-id <id>`,
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    read.kill('SIGTERM');
    readExited
      .then(() => write.stop())
      .then(() => embedded?.stop())
      .then(
        () => process.exit(code),
        (err) => (logger.error({ err }, 'shutdown failed'), process.exit(1)),
      );
  };
  void readExited.then(([code, signal]) => {
    if (stopping) return;
    logger.error({ code, signal }, 'read service exited; stopping');
    stop(1);
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'shutting down');
      stop(0);
    });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
