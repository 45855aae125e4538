import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHarness, uniqueInt, type Harness } from '@titanbot/write/test-support/harness';
import { TestClock } from '@titanbot/write/test-support/test-clock';
import { FeedGapError, ReadModel } from '../src/store/read-model.js';
import { GLOBAL_SCOPE } from '@titanbot/service-kit/daemon-database';
import { adminApi, provisionDevice, uniquePixel, uniqueShape } from './support/admin.js';
import { checkVersion } from './support/daemon.js';
import { healthStatus } from '@titanbot/write/test-support/health';
import { logLines, mirrorRows, moreAdminApi, postgresRows } from './support/more.js';
import { startSystem, type Replica, type System } from './support/system.js';

let sys: System;
let replica: Replica;
let api: ReturnType<typeof adminApi>;
let more: ReturnType<typeof moreAdminApi>;
let fleet: Awaited<ReturnType<typeof provisionDevice>>;

beforeAll(async () => {
  sys = await startSystem();
  api = adminApi(sys.write);
  more = moreAdminApi(sys.write);
  fleet = await provisionDevice(api);
  replica = await sys.startReplica();
  await replica.service.consumer.caughtUp;
  await replica.synced();
});
afterAll(async () => {
  await sys?.stop();
});

const daemonOf = (r: Replica): DaemonServiceClient => r.daemon();

/** Stops the replica keeping its DATA_DIR and starts a new one on it; waits until it is synced. */
async function restart(r: Replica, beforeStart: () => Promise<void> = async () => undefined): Promise<Replica> {
  await r.stop({ keepData: true });
  await beforeStart();
  const next = await sys.startReplica({}, r.dataDir);
  await next.service.consumer.caughtUp;
  await next.synced();
  return next;
}

/** Admin changes touching every fed table (none of them to `fleet`'s account scope unless `inScope`). */
async function scenario(inScope = false): Promise<void> {
  const legion = await more.createLegion({ title: 'Legion', extTitle: 'ext', payDayOfMonth: 15 });
  const doomedLegion = await more.createLegion({ title: 'Doomed' });
  await more.updateLegion({ uuid: legion.uuid, title: 'Legion renamed' }, ['title']);
  const a1 = await api.createAccount();
  const a2 = await api.createAccount();
  const a3 = await api.createAccount();
  await more.updateAccount({ uuid: a1.uuid, isEmpireSleeping: true, legionUuid: legion.uuid, firstName: 'Bea' }, ['is_empire_sleeping', 'legion_uuid', 'first_name']);
  await more.updateAccount({ uuid: a2.uuid, legionUuid: doomedLegion.uuid }, ['legion_uuid']);
  await more.deleteLegion(doomedLegion.uuid);
  const d1 = await api.createDevice();
  const d2 = await api.createDevice();
  await api.bind(d1.uuid, a1.logicalId);
  await api.bind(d1.uuid, a2.logicalId);
  await api.bind(d2.uuid, a3.logicalId);
  await more.updateDevice({ uuid: d1.uuid, isActive: true, isSsh: true, goTimeLimitSeconds: 7 }, ['is_active', 'is_ssh', 'go_time_limit_seconds']);
  // Deleting the current account clears it on the device and unlinks it.
  await more.deleteAccount(a2.uuid);
  const h1 = await api.createHabit({ accountLogicalId: a1.logicalId, priority: 3, action: 'tap', pixels: [uniquePixel(), uniquePixel()], shapes: [uniqueShape()] });
  const h2 = await api.createHabit({ accountLogicalId: a3.logicalId, comment: 'second', isInterruption: false, shapes: [uniqueShape(), uniqueShape()] });
  await api.updateHabit({ uuid: h1.uuid, pixels: [uniquePixel()], comment: 'c', postTimeoutMs: 1500 }, ['pixels', 'comment', 'post_timeout_ms']);
  await api.updateHabit({ uuid: h2.uuid, isActive: false }, ['is_active']);
  const h3 = await api.createHabit({ accountLogicalId: a1.logicalId, pixels: [uniquePixel()] });
  await api.deleteHabit(h3.uuid);
  // A rollout left running: its row and its candidate rows (a habit with pixels and a shape) stay.
  const rollout = await more.createRollout([{ change: { $case: 'update', value: { habit: { uuid: h1.uuid, comment: 'rolled', pixels: [], shapes: [], etag: '' }, updateMask: ['comment'] } } }]);
  await more.startRollout(rollout.uuid, [{ percent: 5, deviceUuids: [d1.uuid] }, { percent: 100 }]);
  if (inScope) await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'in scope', pixels: [uniquePixel()] });
  // Years 2100..9899: scenarios in one run must not pick the same dates (empire dates are unique).
  const year = 2100 + (uniqueInt() % 7800);
  const e1 = await more.createEmpireDate(`${year}-03-04`);
  const e2 = await more.createEmpireDate(`${year}-05-06`);
  await more.updateEmpireDate(e1.uuid, `${year}-03-11`);
  await more.deleteEmpireDate(e2.uuid);
  const t1 = await api.issueToken(d1.uuid);
  await api.issueToken(d2.uuid, 60);
  await api.revokeToken(t1.daemonToken!.uuid);
  // Deleting a device cascades to its Ssh, bindings and tokens.
  await more.deleteDevice(d2.uuid);
}

async function expectMirrorEqualsPostgres(r: Replica): Promise<void> {
  await r.synced();
  const [mirror, source] = [mirrorRows(r.service.model), await postgresRows(sys.db)];
  expect(Object.keys(mirror).sort()).toEqual(Object.keys(source).sort());
  for (const table of Object.keys(source)) {
    // The scenario leaves rows in every table, so the comparison is never vacuous.
    expect(source[table]!.length, table).toBeGreaterThan(0);
    expect(mirror[table], table).toEqual(source[table]);
  }
}

describe('the read model follows the change feed', () => {
  it('reports NOT_SERVING until caught up, and retries an unreachable write service with capped backoff', async () => {
    const dead = await sys.startReplica({ WRITE_SERVICE_URL: '127.0.0.1:1', FEED_RETRY_BASE: '50ms', FEED_RETRY_MAX: '400ms' });
    try {
      expect(await healthStatus(dead.service.address)).toBe('NOT_SERVING');
      // Wait for the retries themselves (not for time): five of them, and still not serving.
      await vi.waitFor(() => expect(logLines(dead.logs, 'feed: disconnected; retrying').length).toBeGreaterThanOrEqual(5), { timeout: 10_000 });
      expect(await healthStatus(dead.service.address)).toBe('NOT_SERVING');
      expect(dead.service.model.checkpoint).toBeNull();
      const delays = logLines(dead.logs, 'feed: disconnected; retrying').map((l) => l['retryInMs'] as number);
      expect(delays.length).toBeGreaterThanOrEqual(5);
      for (const d of delays) expect(d).toBeGreaterThanOrEqual(0);
      // Full jitter under a ceiling that starts at the base, doubles, and stops at the maximum.
      expect(delays[0]).toBeLessThanOrEqual(50);
      expect(delays[1]).toBeLessThanOrEqual(100);
      expect(Math.max(...delays)).toBeLessThanOrEqual(400);
      expect(Math.max(...delays.slice(2))).toBeGreaterThan(50);
    } finally {
      await dead.stop();
    }

    const live = await sys.startReplica();
    try {
      await live.service.consumer.caughtUp;
      expect(await healthStatus(live.service.address)).toBe('SERVING');
      expect(logLines(live.logs, 'feed: caught up')).toHaveLength(1);
    } finally {
      await live.stop();
    }
    expect(await healthStatus(replica.service.address)).toBe('SERVING');
  });

  it('mirrors every fed table exactly as PostgreSQL holds it', async () => {
    await scenario();
    await expectMirrorEqualsPostgres(replica);
    // A fresh replica (built from a snapshot, not from the feed) holds the same rows.
    const fresh = await sys.startReplica();
    try {
      await fresh.service.consumer.caughtUp;
      await expectMirrorEqualsPostgres(fresh);
      expect(mirrorRows(fresh.service.model)).toEqual(mirrorRows(replica.service.model));
    } finally {
      await fresh.stop();
    }
  });

  it('resumes after a restart from its checkpoint, without a rebuild, and keeps scope versions', async () => {
    const before = (await checkVersion(daemonOf(replica), fleet.token, fleet.logicalId)).version;
    const globalBefore = (await checkVersion(daemonOf(replica), fleet.token, undefined)).version;
    const checkpoint = replica.service.model.checkpoint!;
    // Every revision the restarted replica is handed, to show it continues right after its checkpoint.
    const handed: number[] = [];
    const original = ReadModel.prototype.applyBatch;
    const spy = vi.spyOn(ReadModel.prototype, 'applyBatch').mockImplementation(function (this: ReadModel, epoch, events) {
      handed.push(...events.map((e) => e.revision));
      return original.call(this, epoch, events);
    });
    try {
      replica = await restart(replica, () => scenario(false));
    } finally {
      spy.mockRestore();
    }
    const after = replica.service.model.checkpoint!;
    expect(after.epoch).toBe(checkpoint.epoch);
    expect(after.revision).toBeGreaterThan(checkpoint.revision);
    const head = Number((await sys.db.query('select head_revision from feed_state')).rows[0].head_revision);
    expect(after.revision).toBe(head);
    // Nothing at or below the checkpoint came again, nothing was skipped, nothing came twice.
    expect(handed).toEqual(Array.from({ length: head - checkpoint.revision }, (_, i) => checkpoint.revision + 1 + i));
    expect(logLines(replica.logs, 'rebuilt from a snapshot')).toEqual([]);
    expect(logLines(replica.logs, 'rebuilding the read model')).toEqual([]);
    await expectMirrorEqualsPostgres(replica);
    // Nothing changed for these scopes meanwhile: same versions, answered from the restored memory.
    expect(await checkVersion(daemonOf(replica), fleet.token, fleet.logicalId, before)).toEqual({ version: before, changed: false });
    expect(await checkVersion(daemonOf(replica), fleet.token, undefined, globalBefore)).toEqual({ version: globalBefore, changed: false });

    // And a change in the scope after the restart moves it.
    await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'after restart' });
    await replica.synced();
    expect((await checkVersion(daemonOf(replica), fleet.token, fleet.logicalId, before)).changed).toBe(true);
  });

  it('rebuilds from a snapshot when its model was written by a release with other columns', async () => {
    replica = await restart(replica, async () => {
      // As an earlier release left it: daemon tokens mirrored without their kind.
      const model = new Database(path.join(replica.dataDir, 'read', 'model', 'read-model.sqlite'));
      model.exec('alter table daemon_tokens drop column kind');
      model.close();
    });
    expect(logLines(replica.logs, 'rebuilt from a snapshot').length).toBeGreaterThan(0);
    await expectMirrorEqualsPostgres(replica);
    expect((await checkVersion(daemonOf(replica), fleet.token, fleet.logicalId)).version).toBeTruthy();
  });

  it('rebuilds from a snapshot when the history it needs was pruned', async () => {
    const before = (await checkVersion(daemonOf(replica), fleet.token, fleet.logicalId)).version;
    const checkpoint = replica.service.model.checkpoint!;
    replica = await restart(replica, async () => {
      await scenario(true);
      await sys.db.query('delete from feed_events where revision <= (select head_revision from feed_state)');
      await sys.db.query('update feed_state set retained_from = head_revision + 1');
    });
    expect(logLines(replica.logs, 'rebuilding the read model from a snapshot')).toHaveLength(1);
    expect(logLines(replica.logs, 'rebuilt from a snapshot')).toHaveLength(1);
    const head = Number((await sys.db.query('select head_revision from feed_state')).rows[0].head_revision);
    expect(replica.service.model.checkpoint).toEqual({ epoch: checkpoint.epoch, revision: head });
    await expectMirrorEqualsPostgres(replica);
    // The scenario added a habit to the scope: its content, so its version, changed.
    const now = await checkVersion(daemonOf(replica), fleet.token, fleet.logicalId, before);
    expect(now.changed).toBe(true);
    // Feed events after the rebuild apply on top of the snapshot.
    await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'after prune' });
    await expectMirrorEqualsPostgres(replica);
    expect((await checkVersion(daemonOf(replica), fleet.token, fleet.logicalId, now.version)).changed).toBe(true);
  });

  it('refuses a batch with a missing revision and leaves the model unchanged', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-read-gap-'));
    const model = new ReadModel(dir, 'test format');
    try {
      const epoch = randomUUID();
      model.beginSnapshot(epoch, 5).commit();
      expect(model.checkpoint).toEqual({ epoch, revision: 5 });
      const legion = (revision: number, title: string) => ({ revision, table: 'legions', operation: 'upsert' as const, row: { uuid: randomUUID(), title }, transactionContinues: false });
      const habit = (revision: number) => ({ revision, table: 'habits', operation: 'upsert' as const, row: { uuid: randomUUID(), is_active: true, is_interruption: true, updated_at: '2024-01-01T00:00:00+00:00' }, transactionContinues: false });
      const versionBefore = model.versions.version(GLOBAL_SCOPE);
      const count = () => model.reader.prepare('select (select count(*) from legions) + (select count(*) from habits)').pluck().get();

      expect(() => model.applyBatch(epoch, [legion(7, 'gap')])).toThrow(FeedGapError);
      // A good event before the gap is rolled back with the rest of the batch.
      expect(() => model.applyBatch(epoch, [habit(6), legion(8, 'gap')])).toThrow(FeedGapError);
      expect(model.checkpoint).toEqual({ epoch, revision: 5 });
      expect(count()).toBe(0);
      expect(model.versions.version(GLOBAL_SCOPE)).toBe(versionBefore);

      // Revisions at or below the checkpoint were applied already: a no-op.
      model.applyBatch(epoch, [legion(4, 'old'), legion(5, 'old')]);
      expect(model.checkpoint).toEqual({ epoch, revision: 5 });
      expect(count()).toBe(0);

      // The next revision applies; a batch overlapping the checkpoint applies only what is new.
      model.applyBatch(epoch, [legion(5, 'old'), habit(6), legion(7, 'new')]);
      expect(model.checkpoint).toEqual({ epoch, revision: 7 });
      expect(model.reader.prepare('select title from legions').pluck().all()).toEqual(['new']);
      // The global habit at revision 6 changed the global scope's content.
      expect(model.versions.version(GLOBAL_SCOPE)).not.toBe(versionBefore);
      expect(() => model.applyBatch(randomUUID(), [legion(8, 'other epoch')])).toThrow();
      expect(model.checkpoint).toEqual({ epoch, revision: 7 });
    } finally {
      model.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('applies a feed transaction that spans batches in one SQLite transaction, visible and announced only when whole', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-read-txn-'));
    const model = new ReadModel(dir, 'test format');
    try {
      const epoch = randomUUID();
      model.beginSnapshot(epoch, 5).commit();
      const legion = (revision: number, transactionContinues: boolean) => ({ revision, table: 'legions', operation: 'upsert' as const, row: { uuid: randomUUID(), title: `r${revision}` }, transactionContinues });
      const habit = (revision: number, transactionContinues: boolean) => ({
        revision,
        table: 'habits',
        operation: 'upsert' as const,
        row: { uuid: randomUUID(), is_active: true, is_interruption: true, updated_at: '2024-01-01T00:00:00+00:00' },
        transactionContinues,
      });
      const titles = () => model.reader.prepare('select title from legions order by title').pluck().all();
      const announced: string[] = [];
      const stop = model.versions.listen(GLOBAL_SCOPE, randomUUID(), (v) => announced.push(v));

      // Transaction 6..7 ends inside the batch; 8..10 begins in it and continues in the next.
      model.applyBatch(epoch, [legion(6, true), legion(7, false), habit(8, true)]);
      expect(model.checkpoint).toEqual({ epoch, revision: 7 });
      expect(titles()).toEqual(['r6', 'r7']);
      expect(model.reader.prepare('select count(*) from habits').pluck().get()).toBe(0);
      expect(announced).toEqual([]);
      model.applyBatch(epoch, [legion(9, true)]);
      expect(model.checkpoint).toEqual({ epoch, revision: 7 });
      expect(titles()).toEqual(['r6', 'r7']);

      // The stream breaks: the open part is rolled back, and the transaction comes again whole.
      model.abortPending();
      model.applyBatch(epoch, [habit(8, true), legion(9, true), legion(10, false)]);
      expect(model.checkpoint).toEqual({ epoch, revision: 10 });
      expect(titles()).toEqual(['r10', 'r6', 'r7', 'r9']);
      expect(model.reader.prepare('select count(*) from habits').pluck().get()).toBe(1);
      expect(announced).toHaveLength(1);
      stop();
    } finally {
      model.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  // Keep last: the database keeps the new epoch.
  it('rebuilds from a snapshot when the feed has a new epoch', async () => {
    const oldEpoch = replica.service.model.checkpoint!.epoch;
    const before = (await checkVersion(daemonOf(replica), fleet.token, fleet.logicalId)).version;
    const newEpoch = String((await sys.db.query('update feed_state set epoch = gen_random_uuid() returning epoch')).rows[0].epoch);
    expect(newEpoch).not.toBe(oldEpoch);
    const globalBefore = (await checkVersion(daemonOf(replica), fleet.token, undefined)).version;
    await api.createHabit({ accountLogicalId: uniqueInt(), action: 'under the new epoch' });
    await replica.synced();
    replica = await restart(replica);
    expect(logLines(replica.logs, 'rebuilding the read model from a snapshot')).toHaveLength(1);
    expect(logLines(replica.logs, 'rebuilt from a snapshot')).toHaveLength(1);
    expect(replica.service.model.checkpoint!.epoch).toBe(newEpoch);
    await expectMirrorEqualsPostgres(replica);
    const scoped = await checkVersion(daemonOf(replica), fleet.token, fleet.logicalId, before);
    const global = await checkVersion(daemonOf(replica), fleet.token, undefined);
    // Rebuilt from a snapshot of the same content (the new habit is another account's): the same
    // versions, so daemons download nothing.
    expect(scoped).toEqual({ version: before, changed: false });
    expect(global.version).toBe(globalBefore);
    expect(await healthStatus(replica.service.address)).toBe('SERVING');
  });
});

describe('a replica that has lost its feed', () => {
  it('with FEED_LOST_AFTER, reports NOT_SERVING once the feed has been silent that long, and SERVING when it answers again', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-write-lost-'));
    const own = await startSystem({ DATA_DIR: dataDir });
    const clock = new TestClock();
    const replica = await own.startReplica({ FEED_LOST_AFTER: '10s' }, undefined, clock);
    const { address, adminToken, readerToken } = own.write;
    let restarted: Harness | undefined;
    try {
      await vi.waitFor(async () => expect(await healthStatus(replica.service.address)).toBe('SERVING'), { timeout: 10_000 });
      await own.write.stop();
      // Each look moves the clock past FEED_LOST_AFTER again: a message still in flight when the
      // write service stopped may count as contact once, but nothing comes after it.
      await vi.waitFor(
        async () => {
          clock.advance(10_001);
          expect(await healthStatus(replica.service.address)).toBe('NOT_SERVING');
        },
        { timeout: 10_000, interval: 200 },
      );
      restarted = await startHarness({ WRITE_GRPC_ADDR: address, DATA_DIR: dataDir, ADMIN_TOKEN: adminToken, READER_TOKEN: readerToken });
      await vi.waitFor(async () => expect(await healthStatus(replica.service.address)).toBe('SERVING'), { timeout: 10_000 });
    } finally {
      await replica.stop();
      await own.db.end();
      await restarted?.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
