import { parseArgs } from 'node:util';
import { parseDurationMs } from '@titanbot/service-kit/config';
import { DaemonSync, DEFAULT_SYNC_TIMEOUT_MS, describeError } from './sync.js';
import type { SyncLogger } from './sync-logger.js';

/** Shown for `--help` and after a usage error. */
export const USAGE = `Usage: titanbot-daemon sync (--once | --watch) --token-file PATH --db PATH [--server HOST:PORT] [--logical-id N] [--timeout DURATION] [--tls | --ca-file PATH]

Keeps a local daemon database current with the read service.
  --once            check once, download if the version changed, exit; a replica that is down
                    or busy is retried (at most 1 s apart) until --timeout
  --watch           follow version changes until SIGINT/SIGTERM; never gives up on a replica
  --timeout         how long --once keeps retrying: 30s, 5m, 1h (default 5m; 0 = one try)
  --tls             connect with TLS, verifying the server with the system's trust store
  --ca-file         connect with TLS, verifying the server with this CA (PEM); download URLs
                    the server offers are checked against this CA and the system's
  --server          read service address (default 127.0.0.1:50052)
  --token-file      file holding the daemon token (tbd_...); rewritten when the token rotates
  --db              the daemon database file to keep current
  --logical-id      account scope (omit for the global scope)

Prints one JSON line per event on stdout; errors go to stderr with exit code 1 (2 for usage).`;

/** A command line that cannot be run; `main` prints it with the usage text and exits 2. */
export class UsageError extends Error {}

const usageError = (message: string): never => {
  throw new UsageError(message);
};

/** What `titanbot-daemon` was asked to do. */
export type CliCommand =
  | { command: 'help' }
  | { command: 'sync'; mode: 'once' | 'watch'; server: string; tokenFile: string; dbPath: string; logicalId?: number; timeoutMs: number; tls?: { caFile?: string } };

/**
 * Parses `argv` (without node and script, e.g. `process.argv.slice(2)`).
 * Throws UsageError for an unknown command or option, both or neither of --once/--watch, a missing
 * --token-file or --db, a --logical-id that is not an integer in 0..2147483647, or a --timeout
 * that is not a duration.
 */
export function parseCliArgs(argv: string[]): CliCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        once: { type: 'boolean' },
        watch: { type: 'boolean' },
        server: { type: 'string', default: '127.0.0.1:50052' },
        'token-file': { type: 'string' },
        db: { type: 'string' },
        'logical-id': { type: 'string' },
        timeout: { type: 'string' },
        tls: { type: 'boolean' },
        'ca-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    // parseArgs explains over several lines; usage errors stay one line.
    throw new UsageError((err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' '));
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help' };
  if (positionals.length !== 1 || positionals[0] !== 'sync') {
    throw new UsageError(positionals.length === 0 ? 'missing command' : `unknown command: ${positionals.join(' ')}`);
  }
  if (values.once === values.watch) throw new UsageError('give exactly one of --once and --watch');
  if (!values['token-file']) throw new UsageError('--token-file is required');
  if (!values.db) throw new UsageError('--db is required');
  if (!values.server) throw new UsageError('--server must not be empty');
  const command: CliCommand = {
    command: 'sync',
    mode: values.once ? 'once' : 'watch',
    server: values.server,
    tokenFile: values['token-file'],
    dbPath: values.db,
    timeoutMs:
      values.timeout === undefined
        ? DEFAULT_SYNC_TIMEOUT_MS
        : (parseDurationMs(values.timeout) ?? usageError(`--timeout must be a duration such as 30s, 5m or 1h, got ${JSON.stringify(values.timeout)}`)),
  };
  if (values.tls || values['ca-file']) command.tls = values['ca-file'] ? { caFile: values['ca-file'] } : {};
  const logicalId = values['logical-id'];
  if (logicalId !== undefined) {
    if (!/^\d+$/.test(logicalId) || Number(logicalId) > 2_147_483_647) {
      throw new UsageError(`--logical-id must be an integer in 0..2147483647, got ${JSON.stringify(logicalId)}`);
    }
    command.logicalId = Number(logicalId);
  }
  return command;
}

const printEvent = (event: string, fields: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
};

/** How often the CLI prints a `watch-retry` line while its replica is away (ms). */
export const RETRY_LINE_EVERY_MS = 30_000;

/**
 * `print` with `watch-retry` events (one per reconnect attempt, up to one a second) printed at
 * most once per RETRY_LINE_EVERY_MS after the `watch-lost` line, each saying how many were held
 * back (`suppressed`). Every other event is printed as it comes. `now` in ms.
 */
export function quietRetries(print: SyncLogger, now: () => number = Date.now): SyncLogger {
  let lastMs = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (event, fields) => {
    if (event !== 'watch-retry') {
      if (event === 'watch-lost') [lastMs, suppressed] = [now(), 0];
      return print(event, fields);
    }
    if (now() - lastMs < RETRY_LINE_EVERY_MS) {
      suppressed++;
      return;
    }
    print(event, { ...fields, suppressed });
    [lastMs, suppressed] = [now(), 0];
  };
}

/**
 * Runs the CLI and resolves with its exit code: 0 on success (for --watch: after SIGINT/SIGTERM),
 * 1 when the sync fails (one line on stderr: gRPC status name and message), 2 for usage errors.
 */
export async function main(argv: string[]): Promise<number> {
  let command: CliCommand;
  try {
    command = parseCliArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`titanbot-daemon: ${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (command.command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const sync = new DaemonSync({ ...command, logger: quietRetries(printEvent) });
  try {
    if (command.mode === 'once') {
      printEvent('synced', { ...(await sync.syncOnce()) });
    } else {
      const stop = new AbortController();
      const abort = (): void => stop.abort();
      process.once('SIGINT', abort);
      process.once('SIGTERM', abort);
      try {
        await sync.watch(stop.signal);
      } finally {
        process.off('SIGINT', abort);
        process.off('SIGTERM', abort);
      }
    }
    return 0;
  } catch (err) {
    const { code, message } = describeError(err);
    process.stderr.write(`titanbot-daemon: ${code ? `${code}: ` : ''}${message}\n`);
    return 1;
  } finally {
    sync.close();
  }
}
