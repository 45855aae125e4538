import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { byteSize } from '@titanbot/service-kit/config';
import { freePort } from '@titanbot/service-kit/free-port';
import pg from 'pg';
import { createMemoryLimit, type MemoryLimit } from './memory-limit.js';

/** The repository root (bench/dist/lib -> ../../..). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A service running as its own process (so its CPU and RSS can be read from /proc). */
export interface ServiceProcess {
  address: string;
  pid: number;
  child: ChildProcess;
  /** The memory cgroup it runs in (BENCH_REPLICA_MEMORY_LIMIT), if any. */
  memoryLimit?: MemoryLimit;
  stop(): Promise<void>;
}

export interface BenchSystem {
  /** postgres:// URL of the benchmark's own database. */
  databaseUrl: string;
  adminToken: string;
  /** The reader credential, for calls a replica makes (ChangeFeedService). */
  readerToken: string;
  write: ServiceProcess;
  /** Starts one more read replica (its own DATA_DIR), waits until it serves. */
  startReplica(env?: Record<string, string>): Promise<ServiceProcess>;
  /** Starts one more write service on the same database and secret store (with `env` added), waits until it serves. */
  startWriteService(env: Record<string, string>): Promise<ServiceProcess>;
  stop(): Promise<void>;
}

/**
 * Resolves once grpc.health.v1 on `address` answers SERVING (the images' probe, given the
 * service's `env`: with TLS_CERT_FILE it speaks TLS and trusts HEALTH_CA_FILE), or throws after `timeoutMs`.
 */
export async function waitServing(address: string, env: Record<string, string> = {}, timeoutMs = 120_000): Promise<void> {
  const probe = path.join(ROOT, 'packages/service-kit/dist/health-probe.js');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await promisify(execFile)(process.execPath, [probe, address], { env: { ...process.env, ...env } }).then(
      () => true,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${address} did not become SERVING`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs `node <script>` from the repository root with `env`, inside `limit` when given; its output goes to stderr. */
export function startNode(script: string, env: Record<string, string>, args: string[] = [], limit?: MemoryLimit): ChildProcess {
  const node = [path.join(ROOT, script), ...args];
  const { command, args: argv } = limit ? limit.wrap(process.execPath, node) : { command: process.execPath, args: node };
  return spawn(command, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * A service started with `startNode` (inside `memoryLimit` when given) and waited for; stop()
 * sends SIGTERM (SIGKILL after 10 s), then removes the memory cgroup.
 */
export async function startService(script: string, env: Record<string, string>, address: string, memoryLimit?: MemoryLimit): Promise<ServiceProcess> {
  const child = startNode(script, env, [], memoryLimit);
  const stop = async (): Promise<void> => {
    await stopChild(child);
    await memoryLimit?.remove();
  };
  const failed = new Promise<never>((_resolve, reject) => child.once('exit', (code, signal) => reject(new Error(`${script} exited with ${code ?? signal}`))));
  await Promise.race([waitServing(address, env), failed]).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { address, pid: child.pid!, child, memoryLimit, stop };
}

/** How `service` ended, if it has: its signal (SIGKILL, under a memory limit: the OOM killer) or `exit <code>`. */
export function endedBy(service: ServiceProcess): string | undefined {
  const { exitCode, signalCode } = service.child;
  return signalCode ?? (exitCode === null ? undefined : `exit ${exitCode}`);
}

/**
 * The memory limit read replicas run under: BENCH_REPLICA_MEMORY_LIMIT (a size such as 512MiB;
 * root only), each replica in its own memory cgroup, as in a container; unset: none.
 */
async function replicaMemoryLimit(name: string): Promise<MemoryLimit | undefined> {
  const limit = process.env['BENCH_REPLICA_MEMORY_LIMIT'];
  return limit ? createMemoryLimit(name, byteSize.parse(limit)) : undefined;
}

/**
 * The system under test, each service in its own process from its built output: a fresh
 * database (on the server of DATABASE_URL when set, else an embedded PostgreSQL that the write
 * service runs), migrated, and the write service. Read replicas are added with startReplica().
 * Quiet logs (warn) so logging does not dominate the figures.
 */
export async function startBenchSystem(): Promise<BenchSystem> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-bench-'));
  // An embedded PostgreSQL started as root runs as another user, which must reach its folder below this one.
  await chmod(dir, 0o755);
  const adminToken = randomBytes(24).toString('base64url');
  const readerToken = randomBytes(24).toString('base64url');
  const writeDir = path.join(dir, 'write');
  let databaseUrl: string;
  let dropDatabase: (() => Promise<void>) | undefined;
  const base: Record<string, string> = { DATA_DIR: writeDir, LOG_LEVEL: 'warn' };
  if (process.env['DATABASE_URL']) {
    const server = new URL(process.env['DATABASE_URL']);
    const name = `titanbot_bench_${process.pid}`;
    const admin = new pg.Client({ connectionString: server.toString() });
    await admin.connect();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
    await admin.end();
    server.pathname = `/${name}`;
    databaseUrl = server.toString();
    base['DATABASE_URL'] = databaseUrl;
    dropDatabase = async () => {
      const c = new pg.Client({ connectionString: process.env['DATABASE_URL'] });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    };
  } else {
    const port = await freePort();
    base['EMBEDDED_PG_PORT'] = String(port);
    databaseUrl = `postgres://postgres:postgres@127.0.0.1:${port}/titanbot`;
  }
  const writeAddress = `127.0.0.1:${await freePort()}`;
  let write: ServiceProcess;
  try {
    await promisify(execFile)(process.execPath, [path.join(ROOT, 'services/write/dist/migrate.js')], { cwd: ROOT, env: { ...process.env, ...base } });
    write = await startService(
      'services/write/dist/main.js',
      { ...base, WRITE_GRPC_ADDR: writeAddress, ADMIN_TOKEN: adminToken, READER_TOKEN: readerToken, FEED_PROGRESS_INTERVAL: '1s' },
      writeAddress,
    );
  } catch (err) {
    await dropDatabase?.();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  // Replicas and extra write services, stopped before the first write service.
  const started: ServiceProcess[] = [];
  return {
    databaseUrl,
    adminToken,
    readerToken,
    write,
    async startReplica(env = {}) {
      const address = `127.0.0.1:${await freePort()}`;
      const memoryLimit = await replicaMemoryLimit(`titanbot-bench-${process.pid}-read-${started.length}`);
      const replica = await startService(
        'services/read/dist/main.js',
        {
          READ_GRPC_ADDR: address,
          WRITE_SERVICE_URL: writeAddress,
          READER_TOKEN: readerToken,
          DATA_DIR: path.join(dir, `read-${started.length}`),
          SECRETS_DIR: path.join(writeDir, 'secrets'),
          LOG_LEVEL: 'warn',
          // The load generators use few devices at thousands of calls, watches and log lines per second.
          DAEMON_RPS: '1000000000',
          DAEMON_BURST: '1000000000',
          DAEMON_MAX_WATCHES: '1000000000',
          DAEMON_LOG_LINES_PER_SECOND: '1000000000',
          DAEMON_LOG_LINES_BURST: '1000000000',
          ...env,
        },
        address,
        memoryLimit,
      );
      started.push(replica);
      return replica;
    },
    async startWriteService(env) {
      const address = `127.0.0.1:${await freePort()}`;
      const service = await startService(
        'services/write/dist/main.js',
        { DATA_DIR: writeDir, DATABASE_URL: databaseUrl, SECRET_STORE: 'file', LOG_LEVEL: 'warn', WRITE_GRPC_ADDR: address, ...env },
        address,
      );
      started.push(service);
      return service;
    },
    async stop() {
      // Whatever one service's stop throws, the rest are stopped and the database dropped.
      const stopped = await Promise.allSettled(started.map((s) => s.stop()));
      await write.stop();
      await dropDatabase?.();
      await rm(dir, { recursive: true, force: true });
      const failed = stopped.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}
