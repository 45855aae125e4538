import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { credentials, type Client } from '@grpc/grpc-js';
import { DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import pg from 'pg';
import { pino } from 'pino';
import { expect, inject, vi } from 'vitest';
import { startHarness, type Harness } from '@titanbot/write/test-support/harness';
import type { TestClock } from '@titanbot/write/test-support/test-clock';
import { loadReadConfig } from '../../src/config.js';
import { startReadService, type ReadService } from '../../src/main.js';

/** A running read replica with its own DATA_DIR and captured logs. */
export interface Replica {
  service: ReadService;
  dataDir: string;
  logs: string[];
  /** A DaemonService client connected to this replica. */
  daemon(): DaemonServiceClient;
  /** Resolves once this replica has applied every revision the write side has committed. */
  synced(timeoutMs?: number): Promise<void>;
  stop(options?: { keepData?: boolean }): Promise<void>;
}

/** The write service (real, on the test database) plus a way to start read replicas against it. */
export interface System {
  write: Harness;
  db: pg.Client;
  /** A replica on `dataDir` (default: a new temporary one), reading `clock` (default: the system's). */
  startReplica(env?: Record<string, string>, dataDir?: string, clock?: TestClock): Promise<Replica>;
  stop(): Promise<void>;
}

/**
 * The write service (on `writeEnv.DATABASE_URL`, default the run's test database, reading
 * `writeClock`, default the system's) and a PostgreSQL client of the same database.
 */
export async function startSystem(writeEnv: Record<string, string> = {}, writeClock?: TestClock): Promise<System> {
  const write = await startHarness(writeEnv, writeClock);
  const db = new pg.Client({ connectionString: writeEnv.DATABASE_URL ?? inject('databaseUrl') });
  await db.connect();
  const replicas = new Set<Replica>();
  const headRevision = async (): Promise<number> => Number((await db.query('select head_revision from feed_state')).rows[0].head_revision);

  return {
    write,
    db,
    async startReplica(env = {}, existingDir, clock) {
      const dataDir = existingDir ?? (await mkdtemp(path.join(os.tmpdir(), 'titanbot-read-')));
      const logs: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          logs.push(chunk.toString('utf8'));
          done();
        },
      });
      const config = loadReadConfig({
        READ_GRPC_ADDR: '127.0.0.1:0',
        WRITE_SERVICE_URL: write.address,
        READER_TOKEN: write.readerToken,
        // The write service's file secret store, where the data keys are.
        SECRETS_DIR: path.join(write.dataDir, 'secrets'),
        DATA_DIR: dataDir,
        FEED_RETRY_BASE: '50ms',
        FEED_RETRY_MAX: '500ms',
        ...env,
      });
      const service = await startReadService(config, pino({ level: 'debug' }, sink), clock);
      const clients: Client[] = [];
      const replica: Replica = {
        service,
        dataDir,
        logs,
        daemon() {
          const c = new DaemonServiceClient(service.address, credentials.createInsecure());
          clients.push(c);
          return c;
        },
        async synced(timeoutMs = 5000) {
          const target = await headRevision();
          await vi.waitFor(() => expect(service.model.checkpoint?.revision ?? -1, 'the replica\'s applied revision').toBeGreaterThanOrEqual(target), {
            timeout: timeoutMs,
            interval: 10,
          });
        },
        async stop(options = {}) {
          replicas.delete(replica);
          if (process.env.DUMP_LOGS) process.stderr.write(logs.filter((l) => l.includes('"level":50') || l.includes('"level":40')).join(''));
          for (const c of clients) c.close();
          await service.stop();
          if (!options.keepData) await rm(dataDir, { recursive: true, force: true });
        },
      };
      replicas.add(replica);
      return replica;
    },
    async stop() {
      for (const r of [...replicas]) await r.stop();
      await db.end();
      await write.stop();
    },
  };
}
