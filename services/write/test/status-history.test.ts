import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pruneDeviceStatusChanges, selectDeviceStatusChanges, storeFleetReport, type ReportedStatus } from '../src/db/fleet-store.js';
import { initOrm } from '../src/db/orm.js';

/** A device's status history as replicas' reports write it, on the run's database. */
describe('device status history', () => {
  let orm: MikroORM;
  beforeAll(async () => {
    orm = await initOrm(inject('databaseUrl'), { poolMax: 2 });
  });
  afterAll(() => orm?.close());

  it('adds an entry at the first report and at each change of version, failure or scope, not for contact alone nor for an older report; prunes by time', async () => {
    const em = orm.em.fork();
    const device = randomUUID();
    await em.execute('insert into devices (uuid, physical_id) values (?, ?)', [device, 1_500_000_000 + Math.floor(Math.random() * 5e8)]);
    const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));
    const status = (minute: number, changes: Partial<ReportedStatus> = {}): ReportedStatus => ({
      deviceUuid: device, scopeKey: 7, heldVersion: 'v1', heldSha256: 'ab'.repeat(32), failure: 0, failureMessage: '', lastContactTime: at(minute), ...changes,
    });
    const report = (s: ReportedStatus, replica = 'r1') => storeFleetReport(em, replica, [s], [], []);

    await report(status(0));
    await report(status(1)); // contact only
    await report(status(2, { heldVersion: 'v2' }));
    await report(status(1, { heldVersion: 'v0' }), 'late'); // older than what is stored
    await report(status(3, { heldVersion: 'v2', failure: 3, failureMessage: 'EACCES' }), 'r2');
    await report(status(4, { heldVersion: 'v2', scopeKey: 8 }));

    const history = await selectDeviceStatusChanges(em, device, undefined, 10);
    expect(history.map((c) => [c.heldVersion, c.failure, c.scopeKey, c.replica, c.changeTime.toISOString()])).toEqual([
      ['v2', 0, 8, 'r1', at(4).toISOString()],
      ['v2', 3, 7, 'r2', at(3).toISOString()],
      ['v2', 0, 7, 'r1', at(2).toISOString()],
      ['v1', 0, 7, 'r1', at(0).toISOString()],
    ]);
    expect((await selectDeviceStatusChanges(em, device, history[1]!.id, 10)).map((c) => c.id)).toEqual(history.slice(2).map((c) => c.id));

    await pruneDeviceStatusChanges(em, at(3));
    expect((await selectDeviceStatusChanges(em, device, undefined, 10)).map((c) => c.changeTime.toISOString())).toEqual([at(4).toISOString(), at(3).toISOString()]);
    await em.execute('delete from devices where uuid = ?', [device]);
  });
});
