import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminApi, provisionDevice, uniquePixel } from './support/admin.js';
import { startSystem, type Replica, type System } from './support/system.js';

let sys: System;
let replica: Replica;
let api: ReturnType<typeof adminApi>;
let fleet: Awaited<ReturnType<typeof provisionDevice>>;

beforeAll(async () => {
  sys = await startSystem();
  api = adminApi(sys.write);
  fleet = await provisionDevice(api);
  replica = await sys.startReplica();
  await replica.service.consumer.caughtUp;
  await replica.synced();
});
afterAll(async () => {
  await sys?.stop();
});

describe('whole transactions only', () => {
  it('never announces a version, nor shows a state, in which a habit has only part of the pixels its one transaction gave it', async () => {
    // One CreateHabit with 300 new pixels: 1,201 feed events in one transaction, more than one Subscribe batch (500).
    const model = replica.service.model;
    const action = `whole-${randomUUID()}`;
    const linkCounts = model.reader.prepare('select (select count(*) from habit_pixels hp where hp.habit_uuid = h.uuid) from habits h where h.action = ?').pluck();
    // What any reader could see at each announcement: the link count of every such habit.
    const seen: number[][] = [];
    const stop = model.versions.listen(fleet.logicalId, () => seen.push(linkCounts.all(action) as number[]));
    try {
      await api.createHabit({ accountLogicalId: fleet.logicalId, action, pixels: Array.from({ length: 300 }, () => uniquePixel()) });
      await replica.synced();
    } finally {
      stop();
    }
    expect(seen.flat().length, 'an announcement showed the habit').toBeGreaterThan(0);
    for (const counts of seen) expect(counts.every((n) => n === 300), `link counts at an announcement: ${JSON.stringify(counts)}`).toBe(true);
  });
});
