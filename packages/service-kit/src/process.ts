import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';

/**
 * Runs `main` when `moduleUrl` is the script node was started with (`node dist/main.js`), so a
 * service module can also be imported by tests and launchers. A start-up failure prints the
 * error and exits with code 1.
 */
export function runIfEntryPoint(moduleUrl: string, main: () => Promise<void>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
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
