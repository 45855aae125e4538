import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { exitOnFatalErrors, exitOnStartupFailure, serviceLogger, StartupError } from '@titanbot/service-kit/process';
import { setupTracing, stopTracing } from '@titanbot/service-kit/tracing';
import { loadWriteConfig, type WriteConfig } from './config.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { initOrm, migrate } from './db/orm.js';
import { embeddedPostgresDir, startWriteService } from './main.js';

/** `host:port` with the port one higher (port 0 stays 0: any free port). */
const nextPort = (address: string): string => address.replace(/:(\d+)$/, (_m, p: string) => `:${Number(p) === 0 ? 0 : Number(p) + 1}`);

/** The read service's and the console's entry points, built beside this one by `npm run build`. */
const READ_MAIN = fileURLToPath(new URL('../../read/dist/main.js', import.meta.url));
const CONSOLE_MAIN = fileURLToPath(new URL('../../console/dist/main.js', import.meta.url));
/** Where the development OpenID Provider listens under `npm start` when no OIDC_ISSUER is set. */
const DEV_OIDC_ISSUER = 'http://127.0.0.1:8081';
/** The audience operators' access tokens are asked for when OIDC_AUDIENCE is unset. */
const DEFAULT_AUDIENCE = 'urn:titanbot:admin';

/**
 * How the replica under `npm start` reaches a write service that serves TLS: the CA that issued
 * TLS_CERT_FILE (WRITE_SERVICE_TLS_CA_FILE, else `ca.pem` beside the certificate, where
 * scripts/dev-ca.sh puts it) and, when the write service asks for replica certificates
 * (TLS_CLIENT_CA_FILE), the replica's own (WRITE_SERVICE_TLS_CERT_FILE and _KEY_FILE, else
 * `client.pem` and `client-key.pem` beside it). Without TLS, nothing. Throws StartupError naming
 * the variable to set when a file is not there: a replica that cannot verify the write service
 * would retry for ever.
 */
function replicaTlsEnv(config: WriteConfig, env: NodeJS.ProcessEnv): Record<string, string> {
  if (!config.TLS_CERT_FILE) return {};
  const beside = (name: string): string => path.join(path.dirname(config.TLS_CERT_FILE!), name);
  const pick = (variable: string, fallback: string): string => {
    const file = env[variable] ?? fallback;
    if (!existsSync(file)) throw new StartupError(`TLS_CERT_FILE is set, so the read replica needs ${variable} (not found: ${file})`);
    return file;
  };
  return {
    WRITE_SERVICE_TLS_CA_FILE: pick('WRITE_SERVICE_TLS_CA_FILE', beside('ca.pem')),
    ...(config.TLS_CLIENT_CA_FILE
      ? { WRITE_SERVICE_TLS_CERT_FILE: pick('WRITE_SERVICE_TLS_CERT_FILE', beside('client.pem')), WRITE_SERVICE_TLS_KEY_FILE: pick('WRITE_SERVICE_TLS_KEY_FILE', beside('client-key.pem')) }
      : {}),
  };
}

/**
 * `npm start`: the whole system on one machine with embedded defaults. Starts PostgreSQL under
 * DATA_DIR unless DATABASE_URL is set, applies migrations, starts the write service in this
 * process, one read replica and the operator console as child processes (their own processes, as
 * in production: the replica with the reader credential from the secret store, both under TLS
 * with `replicaTlsEnv`), and prints where the admin token is kept and how to call the services
 * (with `--ca-file` under TLS). Without OIDC_ISSUER the console runs a development OpenID Provider
 * on loopback (DEV_OIDC_ISSUER, default http://127.0.0.1:8081) that the write service trusts, with
 * one operator whose password is made at each start and printed once. Without VAULT_ADDR the
 * services use the file secret store (SECRET_STORE=file), said once in the banner. Stops
 * everything on SIGTERM or SIGINT; if a child dies, so does the system. A setting or machine
 * problem ends it with one line saying what to change.
 */
async function main(logger: Logger): Promise<void> {
  // Unset SECRET_STORE under npm start means "the file store, knowingly" unless Vault is configured.
  const secretStore = process.env.SECRET_STORE ?? (process.env.VAULT_ADDR ? 'vault' : 'file');
  // Without OIDC_ISSUER, operators sign in to the console with the development provider it runs.
  const devIssuer = process.env.OIDC_ISSUER ? undefined : (process.env.DEV_OIDC_ISSUER ?? DEV_OIDC_ISSUER);
  const oidcEnv = { OIDC_ISSUER: process.env.OIDC_ISSUER ?? devIssuer, OIDC_AUDIENCE: process.env.OIDC_AUDIENCE ?? DEFAULT_AUDIENCE };
  const config = loadWriteConfig({ ...process.env, ...oidcEnv, SECRET_STORE: secretStore });
  logger.level = config.LOG_LEVEL;
  const readTls = replicaTlsEnv(config, process.env);
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
      ...readTls,
      // One METRICS_ADDR for `npm start`: the write service takes it, the replica the next port.
      ...(config.METRICS_ADDR ? { METRICS_ADDR: nextPort(config.METRICS_ADDR) } : {}),
    },
  });
  const readExited = once(read, 'exit');
  const devPassword = devIssuer ? randomBytes(15).toString('base64url') : undefined;
  const consoleAddress = process.env.CONSOLE_HTTP_ADDR ?? '127.0.0.1:8080';
  // With their own provider, operators register the console there first (README "The operator console").
  const consoleRuns = Boolean(devIssuer || process.env.CONSOLE_OIDC_CLIENT_SECRET);
  const consoleProcess = consoleRuns ? spawn(process.execPath, [CONSOLE_MAIN], {
    stdio: 'inherit',
    env: {
      ...process.env,
      WRITE_SERVICE_URL: write.address,
      OIDC_AUDIENCE: oidcEnv.OIDC_AUDIENCE,
      ...(devIssuer ? { DEV_OIDC_ISSUER: devIssuer, DEV_OPERATOR_PASSWORD: devPassword } : {}),
      ...(readTls.WRITE_SERVICE_TLS_CA_FILE ? { WRITE_SERVICE_TLS_CA_FILE: readTls.WRITE_SERVICE_TLS_CA_FILE } : {}),
    },
  }) : undefined;
  const consoleExited = consoleProcess ? once(consoleProcess, 'exit') : undefined;
  const readAddress = process.env.READ_GRPC_ADDR ?? '127.0.0.1:50052';
  const secretsDir = path.join(config.DATA_DIR, 'secrets');
  const tokenAt =
    secretStore === 'vault'
      ? `Vault KV v2 ${config.VAULT_ADDR} ${config.VAULT_MOUNT}/${config.VAULT_PATH_PREFIX}/admin-token (field "current")`
      : `${path.join(secretsDir, 'admin-token.json')} (field data.current)`;
  // Where the banner's daemon example keeps its token and database: inside DATA_DIR, not the checkout.
  const daemonDir = path.join(config.DATA_DIR, 'daemon');
  await mkdir(daemonDir, { recursive: true });
  const caFile = readTls.WRITE_SERVICE_TLS_CA_FILE;
  // titanctl finds the admin token under DATA_DIR (default .data): say which when it is another.
  const titanctl = `${config.DATA_DIR === path.resolve('.data') ? '' : `DATA_DIR=${config.DATA_DIR} `}npx titanctl`;
  const caFlag = caFile ? ` --ca-file ${caFile}` : '';
  const legacyAddress = process.env.LEGACY_HTTP_ADDR;
  process.stdout.write(
    [
      '',
      `Titanbot write service (admin + feed API): ${write.address}${caFile ? ' (TLS)' : ''}`,
      `Titanbot read service (daemon API):        ${readAddress}${caFile ? ' (TLS)' : ''}`,
      ...(!consoleRuns
        ? ['Operator console:                          not started: OIDC_ISSUER is set, so register the console at your provider and set CONSOLE_OIDC_CLIENT_SECRET']
        : [
            `Operator console:                          ${config.TLS_CERT_FILE ? 'https' : 'http'}://${consoleAddress}`,
            devIssuer
              ? `  sign in as "operator" with password ${devPassword} (development OpenID Provider at ${devIssuer}, new each start; set OIDC_ISSUER for yours)`
              : `  operators sign in at ${config.OIDC_ISSUER}`,
          ]),
      ...(legacyAddress ? [`Original daemons' HTTP API (legacy):       ${legacyAddress}`] : []),
      `PostgreSQL:   ${embedded ? `embedded, under ${embedded.dir}` : 'DATABASE_URL'}`,
      `Secrets:      ${secretStore === 'vault' ? `Vault ${config.VAULT_ADDR}` : `file store under ${secretsDir} (for development; set VAULT_ADDR for Vault)`}`,
      `Admin token:  ${tokenAt}${secretStore === 'file' ? ' (titanctl reads it from there)' : ''}`,
      ...(caFile ? [`Trusted CA:   ${caFile}`, `Health:       HEALTH_CA_FILE=${caFile} TLS_CERT_FILE=${config.TLS_CERT_FILE} node packages/service-kit/dist/health-probe.js ${readAddress}`] : []),
      'Issue a daemon token for a device:',
      `  ${titanctl} devices create --physical-id 7 --server ${write.address}${caFlag}`,
      `  ${titanctl} tokens issue --device <uuid> --server ${write.address}${caFlag}`,
      `Keep a daemon database current (token in ${path.join(daemonDir, 'token.txt')}):`,
      `  npx titanbot-daemon sync --watch --server ${readAddress}${caFlag} --token-file ${path.join(daemonDir, 'token.txt')} --db ${path.join(daemonDir, 'titanbotd.sqlite')} --logical-id <id>`,
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    read.kill('SIGTERM');
    consoleProcess?.kill('SIGTERM');
    Promise.all([readExited, consoleExited])
      .then(() => write.stop())
      .then(() => stopTracing())
      .then(() => embedded?.stop())
      .then(
        () => process.exit(code),
        (err) => (logger.error({ err }, 'shutdown failed'), process.exit(1)),
      );
  };
  for (const [name, exited] of [['read service', readExited], ['console', consoleExited]] as const) {
    void exited?.then(([code, signal]) => {
      if (stopping) return;
      logger.error({ code, signal }, `${name} exited; stopping`);
      stop(1);
    });
  }
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
