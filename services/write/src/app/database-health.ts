import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { ping } from '../db/availability.js';
import { pendingMigrations } from '../db/orm.js';

/**
 * SQLSTATEs that say PostgreSQL is not there to answer, not that the statement was wrong: class 08
 * (connection exception) except 08P01 (protocol violation: the request's bytes, e.g. a NUL in
 * text), 57P01-57P03 (shutting down, crashed, starting up), 53300 (too many connections).
 */
const UNAVAILABLE_SQLSTATE = /^(08(?!P01)...|57P0[123]|53300)$/;

/** Socket errors of a connection attempt or a connection lost mid-call. */
const UNAVAILABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Messages of pg and knex that carry no code: a connection ended under a query, a connect timeout,
 * no pooled connection within `acquireConnectionTimeout`, and knex's "Transaction query already
 * complete", which is what the next statement of a transaction gets after its connection died
 * (every transaction here is awaited to its end, so it has no other cause; the outage test meets it).
 */
const UNAVAILABLE_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Timeout acquiring a connection|Client has encountered a connection error|Transaction query already complete/i;

/**
 * Whether `err` (or any error in its `cause` chain; MikroORM wraps driver errors) means the
 * database is unreachable or refusing connections, so the call may succeed later unchanged.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_SOCKET_CODES.has(code))) return true;
    if (e.name === 'KnexTimeoutError' || UNAVAILABLE_MESSAGES.test(e.message)) return true;
  }
  return false;
}

export interface DatabaseHealthOptions {
  /** Between probes (ms). Health follows the database within this plus `timeoutMs`. */
  everyMs: number;
  /** A probe that has not answered by then (ms) counts as the database being down. */
  timeoutMs: number;
  /** Called with the new state on every change (and once with the first probe's result). */
  onChange: (serving: boolean) => void;
}

/**
 * Keeps the write service's health equal to its database's: SERVING while PostgreSQL answers and
 * has the schema this code expects (no pending migration), NOT_SERVING otherwise, so a balancer
 * stops sending writes that could only fail. Logs each transition once, not each failed probe.
 * Returns a function that stops probing.
 */
export function watchDatabaseHealth(orm: MikroORM, logger: Logger, options: DatabaseHealthOptions): () => void {
  let serving: boolean | undefined;
  let inFlight = false;
  let migrationsApplied = false;
  const set = (next: boolean, detail: Record<string, unknown>): void => {
    if (next === serving) return;
    serving = next;
    if (next) logger.info('database answering; health SERVING');
    else logger.warn(detail, 'database not ready; health NOT_SERVING');
    options.onChange(next);
  };
  const probe = async (): Promise<void> => {
    await ping(orm.em.fork());
    if (migrationsApplied) return;
    const pending = await pendingMigrations(orm);
    if (pending.length > 0) throw Object.assign(new Error('migrations pending: run `npm run migrate`'), { pending });
    migrationsApplied = true;
  };
  const tick = (): void => {
    if (inFlight) return;
    inFlight = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
    });
    // A probe stuck on a dead connection reports down at the timeout; the next starts once it settles.
    const running = probe();
    void Promise.race([running, timedOut])
      .then(
        () => set(true, {}),
        (err: unknown) => set(false, { err }),
      )
      .finally(() => clearTimeout(timer));
    void running.then(
      () => (inFlight = false),
      () => (inFlight = false),
    );
  };
  tick();
  const interval = setInterval(tick, options.everyMs);
  return () => clearInterval(interval);
}
