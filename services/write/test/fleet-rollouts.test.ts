import { randomUUID } from 'node:crypto';
import type { MikroORM } from '@mikro-orm/postgresql';
import { inCohort, type CohortStep } from '@titanbot/service-kit/cohort';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { selectDeviceStatuses, storeFleetReport, type ReportedStatus } from '../src/db/fleet-store.js';
import { initOrm } from '../src/db/orm.js';
import { pgArray } from '../src/db/sql.js';
import { uniqueInt } from './support/harness.js';

/** The fleet view during a rollout: a cohort device should hold the candidate, every other device the stable version. */
describe('the fleet view of a running rollout', () => {
  let orm: MikroORM;
  beforeAll(async () => {
    orm = await initOrm(inject('databaseUrl'), { poolMax: 2 });
  });
  afterAll(() => orm?.close());

  it('counts a device as current when it holds what it should: the candidate in the cohort (the SQL cohort agrees with service-kit), the stable version outside', async () => {
    const em = orm.em.fork();
    const scope = uniqueInt();
    const rollout = randomUUID();
    const devices = Array.from({ length: 400 }, () => randomUUID());
    // A named canary, and a percent with decimals: both ways into the cohort.
    const steps: CohortStep[] = [{ percent: 12.3456, deviceUuids: [devices[0]!] }, { percent: 37.5, deviceUuids: [] }, { percent: 100, deviceUuids: [] }];
    const current = 1;
    await em.execute(
      `insert into devices (uuid, physical_id) select d, ? + n from unnest(?::uuid[]) with ordinality u(d, n)`,
      [1_500_000_000 + (uniqueInt() % 100_000) * 1_000, pgArray(devices)],
    );
    await em.execute(
      `insert into rollouts (uuid, description, state, account_logical_id, changes, habit_uuids, steps, step_times, current_step, create_time, update_time)
       values (?, '', 'running', ?, '[]', '[]', ?::jsonb, ?::jsonb, ?, now(), now())`,
      [rollout, scope, JSON.stringify(steps.map((s) => ({ ...s, minDurationMs: 0 }))), JSON.stringify([{ startTime: new Date().toISOString() }, { startTime: new Date().toISOString() }]), current],
    );
    // Every other device holds the candidate, whatever its place, so both wrong holdings occur.
    const statuses: ReportedStatus[] = devices.map((deviceUuid, i) => ({
      deviceUuid, scopeKey: scope, heldVersion: i % 2 ? 'candidate' : 'stable', heldSha256: '', failure: 0, failureMessage: '', lastContactTime: new Date(),
    }));
    await storeFleetReport(em, 'r1', statuses, [{ scopeKey: scope, version: 'stable', since: new Date() }], [{ rolloutUuid: rollout, scopeKey: scope, version: 'candidate' }]);

    const stored = await selectDeviceStatuses(em, new Date(Date.now() - 60_000), { scopeKey: scope }, 1_000);
    expect(stored).toHaveLength(devices.length);
    const members = new Set<string>(devices.filter((d) => inCohort(rollout, steps, current, d)));
    expect(members.size).toBeGreaterThan(100);
    expect(members.size).toBeLessThan(300);
    expect(members.has(devices[0]!)).toBe(true);
    for (const s of stored) {
      const should = members.has(s.deviceUuid) ? 'candidate' : 'stable';
      expect([s.currentVersion, s.state], s.deviceUuid).toEqual([should, s.heldVersion === should ? 'current' : 'behind']);
    }
    await em.execute(`update rollouts set state = 'aborted' where uuid = ?`, [rollout]);
    // Ended: every device should hold the stable version again.
    for (const s of await selectDeviceStatuses(em, new Date(Date.now() - 60_000), { scopeKey: scope }, 1_000)) {
      expect([s.currentVersion, s.state]).toEqual(['stable', s.heldVersion === 'stable' ? 'current' : 'behind']);
    }
  });
});
