import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { exitOnFatalErrors, exitOnStartupFailure, serviceLogger } from '@titanbot/service-kit/process';
import { setupTracing, stopTracing } from '@titanbot/service-kit/tracing';
import { loadWriteConfig } from './config.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { initOrm, migrate } from './db/orm.js';
import { embeddedPostgresDir, startWriteService } from './main.js';

/** `host:port` with the port one higher (port 0 stays 0: any free port). */
const nextPort = (address: string): string => address.replace(/:(\d+)$/, (_m, p: string) => `:${Number(p) === 0 ? 0 : Number(p) + 1}`);

/** The read service's entry point, built beside this one by `npm run build`. */
const READ_MAIN = fileURLToPath(new URL('../../read/dist/main.js', import.meta.url));

/**
 * `npm start`: the whole system on one machine with embedded defaults. Starts PostgreSQL under
 * DATA_DIR unless DATABASE_URL is set, applies migrations, starts the write service in this
 * process and one read replica as a child process (its own process, as in production, with the
 * reader credential from the secret store), and prints where the admin token is kept and how a
 * daemon syncs. Without VAULT_ADDR both services use the file secret store (SECRET_STORE=file),
 * said once in the banner. Stops everything on SIGTERM or SIGINT; if the replica dies, so does
 * the system. A setting or machine problem ends it with one line saying what to change.
 */
async function main(logger: Logger): Promise<void> {
  // Unset SECRET_STORE under npm start means "the file store, knowingly" unless Vault is configured.
  const secretStore = process.env.SECRET_STORE ?? (process.env.VAULT_ADDR ? 'vault' : 'file');
  const config = loadWriteConfig({ ...process.env, SECRET_STORE: secretStore });
  logger.level = config.LOG_LEVEL;
  const embedded = config.DATABASE_URL ? undefined : await startEmbeddedPostgres(embeddedPostgresDir(config), config.EMBEDDED_PG_PORT, logger);
  const databaseUrl = config.DATABASE_URL ?? embedded!.url;
  const orm = await initOrm(databaseUrl, { poolMax: 2, logger });
  logger.info({ applied: await migrate(orm) }, 'migrations');
  await orm.close();

  // The write service runs in this process; the replica sets up its own tracing from the same environment.
  setupTracing('titanbot-write');
  const write = await startWriteService({ ...config, DATABASE_URL: databaseUrl }, logger.child({ service: 'write' }));
  const read = spawn(process.execPath, [READ_MAIN], {
    stdio: 'inherit',
    env: {
      ...process.env,
      WRITE_SERVICE_URL: write.address,
      READER_TOKEN: write.readerCredential(),
      DATA_DIR: config.DATA_DIR,
      SECRET_STORE: secretStore,
      // One METRICS_ADDR for `npm start`: the write service takes it, the replica the next port.
      ...(config.METRICS_ADDR ? { METRICS_ADDR: nextPort(config.METRICS_ADDR) } : {}),
    },
  });
  const readExited = once(read, 'exit');
  const readAddress = process.env.READ_GRPC_ADDR ?? '127.0.0.1:50052';
  const secretsDir = path.join(config.DATA_DIR, 'secrets');
  const tokenAt =
    secretStore === 'vault'
      ? `Vault KV v2 ${config.VAULT_ADDR} ${config.VAULT_MOUNT}/${config.VAULT_PATH_PREFIX}/admin-token (field "current")`
      : `${path.join(secretsDir, 'admin-token.json')} (field data.current)`;
  // Where the banner's daemon example keeps its token and database: inside DATA_DIR, not the checkout.
  const daemonDir = path.join(config.DATA_DIR, 'daemon');
  await mkdir(daemonDir, { recursive: true });
  process.stdout.write(
    [
      '',
      `Titanbot write service (admin + feed API): ${write.address}`,
      `Titanbot read service (daemon API):        ${readAddress}`,
      `PostgreSQL:   ${embedded ? `embedded, under ${embeddedPostgresDir(config)}` : 'DATABASE_URL'}`,
      `Secrets:      ${secretStore === 'vault' ? `Vault ${config.VAULT_ADDR}` : `file store under ${secretsDir} (for development; set VAULT_ADDR for Vault)`}`,
      `Admin token:  ${tokenAt}`,
      'Issue a daemon token for a device:',
      `  grpcurl -plaintext -H "x-api-key: $ADMIN_TOKEN" -d '{"device":{"physical_id":7}}' ${write.address} titanbot.admin.v1.DeviceService/CreateDevice`,
      `  grpcurl -plaintext -H "x-api-key: $ADMIN_TOKEN" -d '{"device_uuid":"<uuid>"}' ${write.address} titanbot.admin.v1.DaemonTokenService/IssueDaemonToken`,
      `Keep a daemon database current (token in ${path.join(daemonDir, 'token.txt')}):`,
      `  npx titanbot-daemon sync --watch --server ${readAddress} --token-file ${path.join(daemonDir, 'token.txt')} --db ${path.join(daemonDir, 'titanbotd.sqlite')} --logical-id <id>`,
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
      .then(() => stopTracing())
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

const logger = serviceLogger('info', {});
exitOnFatalErrors(logger);
main(logger).catch((err: unknown) => exitOnStartupFailure(logger, err));
