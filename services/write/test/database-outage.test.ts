import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { CreateDeviceRequest, DeviceServiceClient } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded-postgres.js';
import { initOrm, migrate } from '../src/db/orm.js';
import { call, errorDetails, startHarness, uniqueInt, type Harness } from './support/harness.js';
import { healthStatus } from './support/health.js';

interface Outcome {
  physicalId: number;
  requestId: string;
  code: status;
  reason: string;
  retryDelayMs: number | undefined;
}

/** A PostgreSQL of this test's own (embedded), stopped and started again while writes run. */
describe('PostgreSQL stopped and restarted during writes', () => {
  let dir: string;
  let database: EmbeddedDatabase;
  let h: Harness;
  const silent = pino({ level: 'silent' });
  /** What the migrator wrote to its logger. */
  const migrationLog: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-outage-pg-'));
    database = await startEmbeddedPostgres(dir, 0, silent);
    const orm = await initOrm(database.url, { poolMax: 2, logger: pino({ level: 'info' }, { write: (line: string) => migrationLog.push(line) }) });
    await migrate(orm);
    await orm.close();
    h = await startHarness({ DATABASE_URL: database.url, DATABASE_PROBE_INTERVAL: '100ms', DATABASE_PROBE_TIMEOUT: '500ms' });
  });
  afterAll(async () => {
    await h?.stop();
    await database?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('logs the migrator\'s progress as JSON lines of the service\'s logger, not coloured console text', () => {
    expect(migrationLog.length).toBeGreaterThan(0);
    const lines = migrationLog.map((l) => JSON.parse(l) as { component?: string; msg: string });
    expect(lines.filter((l) => l.component === 'migrator').map((l) => l.msg)).toContain("Applied 'Migration0001Initial'");
    expect(migrationLog.join('')).not.toMatch(/\u001b\[/);
  });

  it('answers UNAVAILABLE DATABASE_UNAVAILABLE with a retry delay, health follows, retries with the request_id complete, the feed stays gapless', async () => {
    const devices = h.client(DeviceServiceClient);
    const create = (physicalId: number, requestId: string) =>
      call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId }, requestId }), h.adminToken);
    await vi.waitFor(async () => expect(await healthStatus(h.address)).toBe('SERVING'), { timeout: 10_000 });

    const outcomes: Outcome[] = [];
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const physicalId = uniqueInt();
        const requestId = randomUUID();
        try {
          await create(physicalId, requestId);
          outcomes.push({ physicalId, requestId, code: status.OK, reason: '', retryDelayMs: undefined });
        } catch (err) {
          const e = err as ServiceError;
          outcomes.push({ physicalId, requestId, code: e.code, ...errorDetails(e) });
        }
      }
    })();
    const ok = (o: Outcome): boolean => o.code === status.OK;
    await vi.waitFor(() => expect(outcomes.filter(ok).length).toBeGreaterThanOrEqual(5), { timeout: 10_000 });

    const port = Number(new URL(database.url).port);
    await database.stop();
    await vi.waitFor(async () => expect(await healthStatus(h.address)).toBe('NOT_SERVING'), { timeout: 10_000 });
    const before = outcomes.length;
    await vi.waitFor(() => expect(outcomes.slice(before).filter((o) => !ok(o)).length).toBeGreaterThanOrEqual(3), { timeout: 30_000 });

    database = await startEmbeddedPostgres(dir, port, silent);
    await vi.waitFor(async () => expect(await healthStatus(h.address)).toBe('SERVING'), { timeout: 10_000 });
    const restarted = outcomes.length;
    await vi.waitFor(() => expect(outcomes.slice(restarted).filter(ok).length).toBeGreaterThanOrEqual(3), { timeout: 10_000 });
    writing = false;
    await writer;

    // Every failure was the outage, said as such, with a delay to wait.
    const failures = outcomes.filter((o) => !ok(o));
    expect(failures.length).toBeGreaterThanOrEqual(3);
    for (const f of failures) expect(f, 'a failed write').toMatchObject({ code: status.UNAVAILABLE, reason: 'DATABASE_UNAVAILABLE', retryDelayMs: 1000 });

    // A failed create retried with its request_id completes once: either it had committed (the
    // stored answer) or it had changed nothing (created now).
    for (const f of failures) await create(f.physicalId, f.requestId);
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    try {
      const ids = outcomes.map((o) => o.physicalId);
      const rows = (await db.query('select physical_id, count(*)::int as n from devices where physical_id = any($1) group by physical_id', [ids])).rows;
      expect(rows).toHaveLength(ids.length);
      expect(rows.every((r: { n: number }) => r.n === 1)).toBe(true);
      // Nothing half-written: each device row came with its feed event, and revisions have no gap.
      const unfed = await db.query(
        "select count(*)::int as n from devices d where not exists (select 1 from feed_events e where e.table_name = 'devices' and e.row->>'uuid' = d.uuid::text)",
      );
      expect(unfed.rows[0].n).toBe(0);
      const feed = (await db.query('select min(revision)::int as lo, max(revision)::int as hi, count(*)::int as n from feed_events')).rows[0];
      expect(feed.n).toBe(feed.hi - feed.lo + 1);
    } finally {
      await db.end();
    }
  }, 90_000);
});
