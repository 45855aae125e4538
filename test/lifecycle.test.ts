import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { credentials, type Client } from '@grpc/grpc-js';
import { DaemonTokenServiceClient, ListDaemonTokensRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { isWellFormedDaemonToken } from '@titanbot/service-kit/daemon-token';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { adminApi, provisionDevice, uniquePixel } from '@titanbot/read/test-support/admin';
import { checkVersion } from '@titanbot/read/test-support/daemon';
import { expectedExport, exportRows } from '@titanbot/read/test-support/expected';
import { healthStatus } from '@titanbot/write/test-support/health';
import { call } from '@titanbot/write/test-support/harness';
import { freePort } from '@titanbot/service-kit/free-port';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DAEMON_BIN = path.join(ROOT, 'packages/daemon-client/bin/titanbot-daemon.js');

/** A child process whose stdout JSON lines are collected. */
interface Proc {
  child: ChildProcess;
  events: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/** Starts `command` in its own process group (so npm and the node it runs can be killed together). */
function start(command: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Record<string, unknown>[] = [];
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>);
    }
  });
  child.stderr!.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, events, exited };
}

/** Signals the whole process group of `proc` and waits for it to exit. */
async function stop(proc: Proc, signal: NodeJS.Signals): Promise<void> {
  try {
    process.kill(-proc.child.pid!, signal);
  } catch {
    return; // already gone
  }
  await proc.exited;
}

/** vi.waitFor, every 50 ms, until `probe` returns something truthy (errors count as not yet). */
function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  return vi.waitFor(
    async () => {
      const value = await probe();
      if (value === undefined || value === false) throw new Error(`timed out waiting for ${what}`);
      return value;
    },
    { timeout: timeoutMs, interval: 50 },
  );
}

let dir: string;
let writeEnv: Record<string, string>;
let readEnv: Record<string, string>;
let write: Proc;
let read: Proc;
let daemon: Proc | undefined;
let db: pg.Client;
const clients: Client[] = [];

const startWrite = async (): Promise<Proc> => {
  const proc = start('npm', ['run', '--silent', 'start:write'], writeEnv);
  await until('the write service to serve', async () => (await healthStatus(writeEnv['WRITE_GRPC_ADDR']!)) === 'SERVING');
  return proc;
};
const startRead = async (): Promise<Proc> => {
  const proc = start('npm', ['run', '--silent', 'start:read'], readEnv);
  await until('the read service to serve', async () => (await healthStatus(readEnv['READ_GRPC_ADDR']!)) === 'SERVING');
  return proc;
};

beforeAll(async () => {
  // The services and the daemon CLI run from their built output, as in production.
  await promisify(execFile)('npx', ['tsc', '-b', 'services/write', 'services/read', 'packages/daemon-client'], { cwd: ROOT });
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-e2e-'));
  const secrets = path.join(dir, 'write', 'secrets');
  // The test database is shared with the other suites: use the run's data key, as a replica of that deployment.
  await mkdir(secrets, { recursive: true, mode: 0o700 });
  await copyFile(path.join(inject('dataKeyDir'), 'data-key.json'), path.join(secrets, 'data-key.json'));
  const readerToken = randomBytes(24).toString('base64url');
  writeEnv = {
    DATABASE_URL: inject('databaseUrl'),
    DATA_DIR: path.join(dir, 'write'),
    WRITE_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
    ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    READER_TOKEN: readerToken,
    FEED_PROGRESS_INTERVAL: '200ms',
    TOKEN_ROTATION_GRACE: '2s',
    LOG_LEVEL: 'warn',
  };
  readEnv = {
    WRITE_SERVICE_URL: writeEnv['WRITE_GRPC_ADDR']!,
    READER_TOKEN: readerToken,
    DATA_DIR: path.join(dir, 'read'),
    SECRETS_DIR: secrets,
    READ_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
    FEED_RETRY_BASE: '50ms',
    FEED_RETRY_MAX: '500ms',
    LOG_LEVEL: 'warn',
  };
  write = await startWrite();
  read = await startRead();
  db = new pg.Client({ connectionString: inject('databaseUrl') });
  await db.connect();
}, 180_000);

afterAll(async () => {
  for (const c of clients) c.close();
  for (const proc of [daemon, read, write]) if (proc) await stop(proc, 'SIGTERM');
  await db?.end();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the whole lifecycle, services as child processes', () => {
  it('provision, sync, edit, kill and restart both services, rotate, revoke', async () => {
    const operator = {
      adminToken: writeEnv['ADMIN_TOKEN']!,
      client<C extends Client>(Ctor: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => C): C {
        const c = new Ctor(writeEnv['WRITE_GRPC_ADDR']!, credentials.createInsecure());
        clients.push(c);
        return c;
      },
    };
    const api = adminApi(operator);

    // Operator provisions a device, an account with habits, and a token that rotates within the test.
    const fleet = await provisionDevice(api);
    const habits = [await api.createHabit({ accountLogicalId: fleet.logicalId, priority: 2, action: 'tap', pixels: [uniquePixel()] })];
    const tokens = operator.client(DaemonTokenServiceClient);
    const { token: shortLived } = await api.issueToken(fleet.device.uuid, 20);
    const tokenFile = path.join(dir, 'token.txt');
    const dbPath = path.join(dir, 'titanbotd.sqlite');
    await writeFile(tokenFile, `${shortLived}\n`, { mode: 0o600 });

    // The daemon syncs and watches.
    daemon = start('node', [DAEMON_BIN, 'sync', '--watch', '--server', readEnv['READ_GRPC_ADDR']!, '--token-file', tokenFile, '--db', dbPath, '--logical-id', String(fleet.logicalId)], {});
    const installs = (): Record<string, unknown>[] => daemon!.events.filter((e) => e['event'] === 'installed');
    const expectFileCurrent = async (): Promise<void> => {
      const file = new Database(dbPath, { readonly: true });
      try {
        expect(exportRows(file)).toEqual(await expectedExport(db, fleet.logicalId));
      } finally {
        file.close();
      }
    };
    await until('the first install', () => installs().length >= 1);
    await expectFileCurrent();

    // Operator edits: the watching daemon's file changes.
    habits.push(await api.createHabit({ accountLogicalId: fleet.logicalId, priority: 7, comment: 'edited', pixels: [uniquePixel()] }));
    await until('the edit to reach the daemon', () => installs().length >= 2);
    await expectFileCurrent();

    // The read service is killed mid-watch; a change lands meanwhile; after a restart the daemon is current.
    await stop(read, 'SIGKILL');
    habits.push(await api.createHabit({ accountLogicalId: fleet.logicalId, priority: 1, action: 'while read was down', pixels: [uniquePixel()] }));
    const beforeRestart = installs().length;
    read = await startRead();
    await until('the daemon to catch up after the read restart', () => installs().length > beforeRestart);
    const readClient = new DaemonServiceClient(readEnv['READ_GRPC_ADDR']!, credentials.createInsecure());
    clients.push(readClient);
    const latest = async (): Promise<string> => (await checkVersion(readClient, shortLived, fleet.logicalId)).version;
    const held = async (): Promise<string> => (JSON.parse(await readFile(`${dbPath}.version`, 'utf8')) as { version: string }).version;
    await until('the daemon to hold the latest version', async () => (await held()) === (await latest()));
    await expectFileCurrent();
    expect(daemon.events.some((e) => e['event'] === 'watch-lost')).toBe(true);
    expect(daemon.events.some((e) => e['event'] === 'watch-restored')).toBe(true);

    // The write service restarts: nothing committed is lost, and new changes flow again.
    await stop(write, 'SIGTERM');
    write = await startWrite();
    const kept = await db.query('select count(*)::int as n from habits where uuid = any($1::uuid[])', [habits.map((h) => h.uuid)]);
    expect(kept.rows[0].n).toBe(habits.length);
    const beforeWriteRestartChange = installs().length;
    habits.push(await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'after write restart' }));
    await until('the change after the write restart', () => installs().length > beforeWriteRestartChange);
    await expectFileCurrent();

    // The daemon rotates its 20 s token at 80 % of its lifetime and rewrites the token file; it keeps syncing with the new one.
    await until('token rotation', () => daemon!.events.find((e) => e['event'] === 'token-rotated'), 25_000);
    const rotated = (await readFile(tokenFile, 'utf8')).trim();
    expect(rotated).not.toBe(shortLived);
    expect(isWellFormedDaemonToken(rotated)).toBe(true);

    const beforeRotatedChange = installs().length;
    await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'after rotation' });
    await until('a change synced with the rotated token', () => installs().length > beforeRotatedChange);
    await expectFileCurrent();

    // Operator revokes every token of the device: the replica refuses the daemon's token and ends its open stream.
    const listed = await call(tokens, tokens.listDaemonTokens, ListDaemonTokensRequest.fromPartial({ deviceUuid: fleet.device.uuid }), operator.adminToken);
    // The first revocation ends the whole rotation chain, so the daemon may be refused before the loop ends.
    const revokedAt = Date.now();
    for (const t of listed.daemonTokens) if (!t.revokeTime) await api.revokeToken(t.uuid);
    await until('the replica to refuse the revoked token', () =>
      checkVersion(readClient, rotated, fleet.logicalId).then(
        () => undefined,
        (err: { code: number }) => err.code === 16, // UNAUTHENTICATED
      ),
    );
    await until('the daemon to be refused', () =>
      daemon!.events.find((e) => e['event'] === 'watch-lost' && e['code'] === 'UNAUTHENTICATED' && Date.parse(String(e['time'])) >= revokedAt),
    );
  });
});
