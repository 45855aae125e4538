import { pathToFileURL } from 'node:url';
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

/**
 * A start-up failure the operator can fix; its message says what to change. Printed as one line
 * on stderr, without a stack trace (`runIfEntryPoint`, `exitOnStartupFailure`).
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/**
 * Log fields that may carry a credential, censored wherever a log call puts them: a second line of
 * defence behind never logging them at all (pino `redact`, fast-redact paths).
 */
export const REDACTED_PATHS = [
  'token',
  'password',
  'googlePassword',
  'google_password',
  'privateKey',
  'private_key',
  'plaintext',
  'apiKey',
  'x-api-key',
  'authorization',
  'ADMIN_TOKEN',
  'READER_TOKEN',
  'VAULT_TOKEN',
  'DATABASE_URL',
].flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

/** The one JSON logger shape of every process: `level`, `base` fields, credentials censored. */
export function serviceLogger(level: Level | 'silent', base: Record<string, unknown>, destination?: DestinationStream): Logger {
  const options = { level, base, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * An unhandled rejection or uncaught exception leaves the process in an unknown state: log it at
 * fatal and exit 1, so the supervisor (systemd, Kubernetes, `npm start`) restarts a clean one.
 */
export function exitOnFatalErrors(logger: Logger): void {
  const die = (what: string) => (err: unknown) => {
    logger.fatal({ err }, `${what}; exiting`);
    process.exit(1);
  };
  process.on('unhandledRejection', die('unhandled promise rejection'));
  process.on('uncaughtException', die('uncaught exception'));
}

/**
 * Ends a process whose start failed: a StartupError as one line on stderr (`titanbot: ...`), any
 * other error logged at fatal with its stack (a bug, not a setting). Exits 1.
 */
export function exitOnStartupFailure(logger: Logger, err: unknown): never {
  if (err instanceof StartupError) process.stderr.write(`titanbot: ${err.message}\n`);
  else logger.fatal({ err }, 'start-up failed');
  process.exit(1);
}

/**
 * Runs `main` when `moduleUrl` is the script node was started with (`node dist/main.js`), so a
 * service module can also be imported by tests and launchers. A start-up failure exits 1
 * (`exitOnStartupFailure`: a StartupError such as an invalid setting as one line).
 */
export function runIfEntryPoint(moduleUrl: string, main: () => Promise<void>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main().catch((err: unknown) => exitOnStartupFailure(serviceLogger('info', {}), err));
}

/**
 * On the first SIGTERM or SIGINT: logs it, runs `stop` (a graceful shutdown), then exits 0, or 1
 * when `stop` rejects.
 */
export function stopOnSignals(logger: Logger, stop: () => Promise<void>): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'shutting down');
      stop().then(
        () => process.exit(0),
        (err: unknown) => (logger.error({ err }, 'shutdown failed'), process.exit(1)),
      );
    });
  }
}
