import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chown, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '@titanbot/service-kit/free-port';
import { StartupError } from '@titanbot/service-kit/process';
import pg from 'pg';
import type { Logger } from 'pino';

const require = createRequire(import.meta.url);
const run = promisify(execFile);

export interface EmbeddedDatabase {
  /** postgres:// URL of the `titanbot` database. */
  url: string;
  /** Where the cluster's files are: the folder asked for, or (as root, when the user `postgres` cannot reach it) one under SHARED_ROOT. */
  dir: string;
  stop(): Promise<void>;
}

/**
 * Where the cluster and the binaries go when, as root, the user `postgres` cannot reach the ones
 * asked for (a checkout in a private folder: a container's /root, a `mktemp -d`): a folder of the
 * machine's, outside every user's home.
 */
export const SHARED_ROOT = '/var/lib/titanbot/embedded-postgres';

/** The user PostgreSQL runs as when this process is root (PostgreSQL refuses to run as root). */
const POSTGRES_USER = 'postgres';

/**
 * Starts (initialising on first use) a PostgreSQL cluster in `dir` on `port` (0 = any free port)
 * and ensures a `titanbot` database. For machines without DATABASE_URL. The binaries are those of
 * the `@embedded-postgres/<platform>-<arch>` package. As root, PostgreSQL runs as the user
 * `postgres` (created when missing); when that user cannot enter the folders above `dir` or the
 * binaries, they are used from SHARED_ROOT instead (the binaries copied there once per version,
 * the cluster in `clusters/<hash of dir>`, so it is kept across restarts), and the returned `dir`
 * says where. Throws StartupError when PostgreSQL cannot be run, with its own words.
 */
export async function startEmbeddedPostgres(dir: string, port: number, logger: Logger): Promise<EmbeddedDatabase> {
  const packaged = await packagedBinaries();
  const asUser = process.getuid?.() === 0 ? await postgresUser() : undefined;
  let bin = packaged.bin;
  let clusterDir = path.resolve(dir);
  if (asUser) {
    if (!(await reachableByOthers(packaged.native))) bin = path.join(await sharedBinaries(packaged.native, packaged.version), 'bin');
    if (!(await reachableByOthers(path.dirname(clusterDir)))) clusterDir = path.join(SHARED_ROOT, 'clusters', createHash('sha256').update(clusterDir).digest('hex').slice(0, 16));
  }
  // The folders above stay enterable (0755); the cluster itself is its owner's alone, as initdb wants.
  await mkdir(path.dirname(clusterDir), { recursive: true, mode: 0o755 });
  await mkdir(clusterDir, { recursive: true, mode: 0o700 });
  if (asUser) await chown(clusterDir, asUser.uid, asUser.gid);
  const password = 'postgres';
  if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) await initdb(bin, clusterDir, password, asUser);
  const actualPort = port || (await freePort());
  const server = await startServer(bin, clusterDir, actualPort, asUser, logger);
  const url = `postgres://postgres:${password}@127.0.0.1:${actualPort}`;
  const client = new pg.Client({ connectionString: `${url}/postgres` });
  await client.connect();
  try {
    const exists = await client.query("select 1 from pg_database where datname = 'titanbot'");
    if (exists.rowCount === 0) await client.query('create database titanbot');
  } finally {
    await client.end();
  }
  logger.info({ dir: clusterDir, port: actualPort, ...(bin !== packaged.bin ? { binaries: bin } : {}) }, 'embedded PostgreSQL started');
  return {
    url: `${url}/titanbot`,
    dir: clusterDir,
    async stop() {
      if (server.exitCode !== null || server.signalCode !== null) return;
      // SIGINT is PostgreSQL's "fast" shutdown: sessions end, the cluster is left consistent.
      const exited = once(server, 'exit');
      server.kill('SIGINT');
      await exited;
    },
  };
}

/** The binaries of the platform package the `embedded-postgres` package installed for this machine. */
async function packagedBinaries(): Promise<{ bin: string; native: string; version: string }> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = require.resolve(name);
  } catch {
    throw new StartupError(`no embedded PostgreSQL for ${process.platform}-${process.arch} (${name} is not installed): set DATABASE_URL to a PostgreSQL server`);
  }
  const { initdb } = (await import(pathToFileURL(entry).href)) as { initdb: string };
  const bin = path.dirname(initdb);
  // The package exports only its entry: its package.json is read beside it (dist/index.js).
  const { version } = JSON.parse(await readFile(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
  return { bin, native: path.dirname(bin), version };
}

/** The uid and gid of the user `postgres`, created (with its group) when missing. */
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const ids = async (): Promise<{ uid: number; gid: number }> => ({
    uid: Number((await run('id', ['-u', POSTGRES_USER])).stdout.trim()),
    gid: Number((await run('id', ['-g', POSTGRES_USER])).stdout.trim()),
  });
  try {
    return await ids();
  } catch {
    try {
      await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', POSTGRES_USER]);
    } catch (err) {
      throw new StartupError(`the embedded PostgreSQL cannot run as root and the user "${POSTGRES_USER}" could not be created (${(err as Error).message.trim()}): run as another user, or set DATABASE_URL`);
    }
    return ids();
  }
}

/** Whether users other than the owner may enter `target` and every folder above it (folders not made yet will be, mode 0755). */
async function reachableByOthers(target: string): Promise<boolean> {
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    const mode = await stat(dir).then(
      (s) => s.mode,
      (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? 0o755 : Promise.reject(err)),
    );
    if ((mode & 0o001) === 0) return false;
    if (dir === path.dirname(dir)) return true;
  }
}

/** The packaged `native` folder copied to SHARED_ROOT (once per version; written whole, then renamed into place). */
async function sharedBinaries(native: string, version: string): Promise<string> {
  const target = path.join(SHARED_ROOT, `${version}-${process.platform}-${process.arch}`);
  if (existsSync(target)) return target;
  await mkdir(SHARED_ROOT, { recursive: true, mode: 0o755 });
  const partial = `${target}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await cp(native, partial, { recursive: true, verbatimSymlinks: true });
  await rename(partial, target).catch(async (err: NodeJS.ErrnoException) => {
    // Another start copied it first: theirs is as good.
    await rm(partial, { recursive: true, force: true });
    if (!existsSync(target)) throw err;
  });
  return target;
}

/** initdb of a new cluster in `dir`, owned by `asUser` when given; the password goes through a file only that user reads. */
async function initdb(bin: string, dir: string, password: string, asUser: { uid: number; gid: number } | undefined): Promise<void> {
  const passwordFile = path.join(os.tmpdir(), `titanbot-pg-password-${randomBytes(6).toString('hex')}`);
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  try {
    if (asUser) await chown(passwordFile, asUser.uid, asUser.gid);
    await run(path.join(bin, 'initdb'), [`--pgdata=${dir}`, '--auth=password', '--username=postgres', `--pwfile=${passwordFile}`, '--encoding=UTF8', '--no-locale'], { ...asUser });
  } catch (err) {
    throw new StartupError(`the embedded PostgreSQL could not create its cluster in ${dir}: ${String((err as { stderr?: string }).stderr || (err as Error).message).trim()}`);
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** Runs `postgres` on `dir` and `port` (loopback only) until it says it accepts connections; its lines go to `logger` at debug. */
async function startServer(bin: string, dir: string, port: number, asUser: { uid: number; gid: number } | undefined, logger: Logger): Promise<ChildProcess> {
  const server = spawn(path.join(bin, 'postgres'), ['-D', dir, '-p', String(port), '-h', '127.0.0.1', '-k', ''], { ...asUser, stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    server.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      for (const line of text.split('\n').filter((l) => l.trim() !== '')) logger.debug({ component: 'embedded-postgres' }, line.trim());
      output = (output + text).slice(-4096);
      if (output.includes('database system is ready to accept connections')) resolve();
    });
    server.once('error', (err) => reject(new StartupError(`the embedded PostgreSQL could not be started: ${err.message}`)));
    server.once('exit', (code, signal) => reject(new StartupError(`the embedded PostgreSQL stopped at start (${signal ?? `code ${code}`}): ${output.trim().split('\n').slice(-3).join(' | ')}`)));
  });
  server.removeAllListeners('exit');
  return server;
}
