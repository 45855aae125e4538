import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DaemonSync } from '@titanbot/daemon-client';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { adminApi, provisionDevice, uniquePixel } from '@titanbot/read/test-support/admin';
import { expectedExport, exportRows } from '@titanbot/read/test-support/expected';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';

let sys: System;
let replica: Replica;
let api: ReturnType<typeof adminApi>;
let fleet: Awaited<ReturnType<typeof provisionDevice>>;
let dir: string;
let tokenFile: string;

beforeAll(async () => {
  sys = await startSystem();
  api = adminApi(sys.write);
  fleet = await provisionDevice(api);
  replica = await sys.startReplica();
  await replica.service.consumer.caughtUp;
  dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-daemon-'));
  tokenFile = path.join(dir, 'token.txt');
  await writeFile(tokenFile, `${fleet.token}\n`, { mode: 0o600 });
});
afterAll(async () => {
  await sys?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The daemon database at `file` holds exactly what the write side says the scope exports. */
async function expectCurrent(file: string): Promise<void> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    expect(exportRows(db)).toEqual(await expectedExport(sys.db, fleet.logicalId));
  } finally {
    db.close();
  }
}

describe('a daemon kept current by DaemonSync against both services', () => {
  it('sync once writes a daemon database that SQLite opens, then reports unchanged', async () => {
    await api.createHabit({ accountLogicalId: fleet.logicalId, priority: 3, action: 'tap', pixels: [uniquePixel()] });
    await replica.synced();
    const dbPath = path.join(dir, 'once.sqlite');
    const sync = new DaemonSync({ server: replica.service.address, tokenFile, dbPath, logicalId: fleet.logicalId });
    try {
      const first = await sync.syncOnce();
      expect(first.changed).toBe(true);
      await expectCurrent(dbPath);
      expect(await sync.syncOnce()).toMatchObject({ changed: false, version: first.version });
    } finally {
      sync.close();
    }
  });

  it('sync --watch installs every admin change to its scope, each file equal to what PostgreSQL holds', async () => {
    const dbPath = path.join(dir, 'watch.sqlite');
    const events: { event: string; fields: Record<string, unknown> }[] = [];
    const sync = new DaemonSync({
      server: replica.service.address,
      tokenFile,
      dbPath,
      logicalId: fleet.logicalId,
      logger: (event, fields) => events.push({ event, fields }),
    });
    const stop = new AbortController();
    const watching = sync.watch(stop.signal);
    try {
      const installed = (count: number): Promise<void> =>
        vi.waitFor(() => expect(events.filter((e) => e.event === 'installed').length, JSON.stringify(events)).toBeGreaterThanOrEqual(count), {
          timeout: 10_000,
          interval: 5,
        });
      await installed(1);
      for (let i = 1; i <= 3; i++) {
        await api.createHabit({ accountLogicalId: fleet.logicalId, comment: `change ${i}`, pixels: [uniquePixel()] });
        await installed(1 + i);
        await expectCurrent(dbPath);
      }
    } finally {
      stop.abort();
      await watching;
      sync.close();
    }
    expect(await readFile(`${dbPath}.version`, 'utf8')).toContain(replica.service.model.versions.version(fleet.logicalId));
  });
});

describe('a daemon whose replica is killed and restarted', () => {
  type Event = { event: string; fields: Record<string, unknown> };
  const syncWith = (dbPath: string, events: Event[], timeoutMs?: number): DaemonSync =>
    new DaemonSync({
      server: replica.service.address,
      tokenFile,
      dbPath,
      logicalId: fleet.logicalId,
      logger: (event, fields) => events.push({ event, fields }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
  const count = (events: Event[], name: string): number => events.filter((e) => e.event === name).length;
  /** Stops the replica (keeping its files) and returns how to start it again on the same address. */
  const kill = async (): Promise<() => Promise<void>> => {
    const { address } = replica.service;
    const { dataDir } = replica;
    await replica.stop({ keepData: true });
    return async () => {
      replica = await sys.startReplica({ READ_GRPC_ADDR: address }, dataDir);
    };
  };

  it('sync --once keeps trying while the replica is down and installs once it is back', async () => {
    const dbPath = path.join(dir, 'patient-once.sqlite');
    const events: Event[] = [];
    const restart = await kill();
    const sync = syncWith(dbPath, events, 120_000);
    try {
      const synced = sync.syncOnce();
      await vi.waitFor(() => expect(count(events, 'sync-retry')).toBeGreaterThanOrEqual(3), { timeout: 10_000, interval: 5 });
      await restart();
      expect(await synced).toMatchObject({ changed: true });
      await expectCurrent(dbPath);
      const retries = events.filter((e) => e.event === 'sync-retry');
      expect(retries.every((e) => e.fields.code === 'UNAVAILABLE' && Number(e.fields.retryInMs) <= 1000), JSON.stringify(retries)).toBe(true);
    } finally {
      sync.close();
    }
  });

  it('sync --watch never gives up: reconnects at most 1 s apart and installs what changed meanwhile', async () => {
    const dbPath = path.join(dir, 'patient-watch.sqlite');
    const events: Event[] = [];
    const sync = syncWith(dbPath, events);
    const stop = new AbortController();
    const watching = sync.watch(stop.signal);
    try {
      await vi.waitFor(() => expect(count(events, 'installed')).toBe(1), { timeout: 10_000, interval: 5 });
      expect(count(events, 'watching')).toBe(1);
      const restart = await kill();
      // The loss, then six failed reconnects: enough for a backoff that kept doubling to pass 1 s.
      await vi.waitFor(() => expect(count(events, 'watch-retry')).toBeGreaterThanOrEqual(6), { timeout: 20_000, interval: 5 });
      expect(count(events, 'watch-lost')).toBe(1);
      await api.createHabit({ accountLogicalId: fleet.logicalId, comment: 'while the replica was down', pixels: [uniquePixel()] });
      await restart();
      await vi.waitFor(() => expect(count(events, 'installed')).toBe(2), { timeout: 10_000, interval: 5 });
      await expectCurrent(dbPath);
      const waits = events.filter((e) => e.event === 'watch-lost' || e.event === 'watch-retry').map((e) => Number(e.fields.retryInMs));
      expect(Math.max(...waits)).toBeLessThanOrEqual(1000);
      // Regained: said once, with how long and how many attempts it took.
      const restored = events.filter((e) => e.event === 'watch-restored');
      expect(restored).toHaveLength(1);
      expect(restored[0]!.fields.attempts).toBe(count(events, 'watch-retry') + 1);
      expect(count(events, 'watching')).toBe(1);
    } finally {
      stop.abort();
      await watching;
      sync.close();
    }
  });
});
