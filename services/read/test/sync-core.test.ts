import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { uniqueInt } from '@titanbot/write/test-support/harness';
import { ReadModel } from '../src/store/read-model.js';
import { GLOBAL_SCOPE } from '@titanbot/service-kit/daemon-database';
import { adminApi, provisionDevice, uniquePixel, uniqueShape } from './support/admin.js';
import { checkVersion, download } from './support/daemon.js';
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

/**
 * What any reader could see at each announcement of the fleet's scope: the link count of every
 * habit with `action`. `stop` removes the listener.
 */
function linkCountsAtAnnouncements(action: string): { seen: number[][]; stop: () => void } {
  const model = replica.service.model;
  const linkCounts = model.reader.prepare('select (select count(*) from habit_pixels hp where hp.habit_uuid = h.uuid) from habits h where h.action = ?').pluck();
  const seen: number[][] = [];
  const stop = model.versions.listen(fleet.logicalId, randomUUID(), () => seen.push(linkCounts.all(action) as number[]));
  return { seen, stop };
}

describe('whole transactions only', () => {
  it('never announces a version, nor shows a state, in which a habit has only part of the pixels its one transaction gave it', async () => {
    // One CreateHabit with 300 new pixels: 1,201 feed events in one transaction, more than one Subscribe batch (500).
    const action = `whole-${randomUUID()}`;
    const { seen, stop } = linkCountsAtAnnouncements(action);
    try {
      await api.createHabit({ accountLogicalId: fleet.logicalId, action, pixels: Array.from({ length: 300 }, () => uniquePixel()) });
      await replica.synced();
    } finally {
      stop();
    }
    expect(seen.flat().length, 'an announcement showed the habit').toBeGreaterThan(0);
    for (const counts of seen) expect(counts.every((n) => n === 300), `link counts at an announcement: ${JSON.stringify(counts)}`).toBe(true);
  });

  it('applies a transaction of 20,001 events (one habit with 5,000 new pixels), streamed in 500-event messages, as one', async () => {
    const model = replica.service.model;
    const action = `huge-${randomUUID()}`;
    const { seen, stop } = linkCountsAtAnnouncements(action);
    const before = model.checkpoint!.revision;
    try {
      // New dots and new colors for each pixel: 1 habit + 5,000 × (dot, color, pixel, link) events.
      const deviation = uniqueInt();
      const pixels = Array.from({ length: 5_000 }, (_, i) => ({ ...uniquePixel(), rgbHex: i.toString(16).toUpperCase().padStart(6, '0'), deviation }));
      await api.createHabit({ accountLogicalId: fleet.logicalId, action, pixels });
      await replica.synced(30_000);
    } finally {
      stop();
    }
    expect(model.checkpoint!.revision - before).toBeGreaterThanOrEqual(20_001);
    expect(seen).toEqual([[5_000]]);
  }, 60_000);

});

describe('a version names its content', () => {
  it('differs between two scopes with the same content: switching logical id is a change', async () => {
    // Two accounts of one device, neither with a habit of its own: identical files.
    const second = await api.createAccount();
    await api.bind(fleet.device.uuid, second.logicalId);
    await replica.synced();
    const daemon = replica.daemon();
    const first = await checkVersion(daemon, fleet.token, fleet.logicalId);
    const other = await checkVersion(daemon, fleet.token, second.logicalId);
    const global = await checkVersion(daemon, fleet.token, undefined);
    expect(new Set([first.version, other.version, global.version]).size).toBe(3);
    expect((await checkVersion(daemon, fleet.token, second.logicalId, first.version)).changed).toBe(true);
  });

  it('differs between export formats for the same rows, and is equal for the same format', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'titanbot-read-format-'));
    try {
      const epoch = randomUUID();
      const habit = { revision: 2, table: 'habits', operation: 'upsert' as const, row: { uuid: randomUUID(), is_active: true, is_interruption: true, updated_at: '2024-01-01T00:00:00+00:00' }, transactionContinues: false };
      const versionsWith = (format: string): string => {
        const model = new ReadModel(dir, format);
        try {
          if (!model.checkpoint) {
            model.beginSnapshot(epoch, 1).commit();
            model.applyBatch(epoch, [habit]);
          }
          return model.versions.version(GLOBAL_SCOPE);
        } finally {
          model.close();
        }
      };
      const v1 = versionsWith('schema 1; sqlite 3.53.0');
      expect(versionsWith('schema 1; sqlite 3.53.0')).toBe(v1);
      expect(versionsWith('schema 2; sqlite 3.53.0')).not.toBe(v1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is equal on a replica that follows the feed, one restarted and one started later from a snapshot, so a pinned download resumes on another replica', async () => {
    await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'agreed', pixels: [uniquePixel(), uniquePixel()], shapes: [uniqueShape()] });
    await api.createHabit({ action: 'global, agreed', pixels: [uniquePixel()] });
    await replica.synced();
    const late = await sys.startReplica();
    try {
      await late.service.consumer.caughtUp;
      await late.synced();
      const scopes = [fleet.logicalId, undefined];
      for (const logicalId of scopes) {
        const here = await checkVersion(replica.daemon(), fleet.token, logicalId);
        expect(await checkVersion(late.daemon(), fleet.token, logicalId, here.version)).toEqual({ version: here.version, changed: false });
      }
      // A download pinned to the version on one replica, cut, resumes on the other to the same bytes.
      const whole = await download(replica.daemon(), fleet.token, { logicalId: fleet.logicalId });
      const rest = await download(late.daemon(), fleet.token, { logicalId: fleet.logicalId, version: whole.header.version, offset: 100 });
      expect(rest.header).toEqual(whole.header);
      expect(Buffer.concat([whole.bytes.subarray(0, 100), rest.bytes]).equals(whole.bytes)).toBe(true);
    } finally {
      await late.stop();
    }
  });

  it('stays the same across writes that change nothing exported, and changes with every change of exported content', async () => {
    const daemon = replica.daemon();
    const versions = async (): Promise<[string, string]> => [
      (await checkVersion(daemon, fleet.token, fleet.logicalId)).version,
      (await checkVersion(daemon, fleet.token, undefined)).version,
    ];
    const pixels = [uniquePixel(), uniquePixel()];
    const mine = await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'mine', priority: 5, pixels, shapes: [uniqueShape()] });
    await replica.synced();
    const start = await versions();
    const head = async (): Promise<number> => Number((await sys.db.query('select head_revision from feed_state')).rows[0].head_revision);

    // A no-op update (every field equal, the same lists) writes nothing at all.
    const headBefore = await head();
    const same = await api.updateHabit({ uuid: mine.uuid, action: 'mine', priority: 5, pixels: mine.pixels, shapes: mine.shapes }, ['action', 'priority', 'pixels', 'shapes']);
    expect(same.updatedAt).toEqual(mine.updatedAt);
    expect(same.etag).toBe(mine.etag);
    expect(await head()).toBe(headBefore);

    // Writes outside what the scope exports: an inactive habit, a habit of a logical id no
    // account has, one of logical id 0, another account's habit.
    await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'inactive', isActive: false, pixels: [uniquePixel()] });
    await api.createHabit({ accountLogicalId: 2_000_000_000 - (uniqueInt() % 1000), action: 'nobody' });
    await api.createHabit({ accountLogicalId: 0, action: 'logical id 0' });
    const stranger = await api.createAccount();
    await api.createHabit({ accountLogicalId: stranger.logicalId, action: 'theirs' });
    await replica.synced();
    expect(await versions()).toEqual(start);

    // Every change of exported content moves the scope's version (and only a global one the global's).
    const steps: [string, () => Promise<unknown>, boolean][] = [
      ['update a field', () => api.updateHabit({ uuid: mine.uuid, comment: 'changed' }, ['comment']), false],
      ['replace the pixel list', () => api.updateHabit({ uuid: mine.uuid, pixels: [pixels[0]!] }, ['pixels']), false],
      ['deactivate', () => api.updateHabit({ uuid: mine.uuid, isActive: false }, ['is_active']), false],
      ['reactivate', () => api.updateHabit({ uuid: mine.uuid, isActive: true }, ['is_active']), false],
      ['move to another account', () => api.updateHabit({ uuid: mine.uuid, accountLogicalId: stranger.logicalId }, ['account_logical_id']), false],
      ['move back', () => api.updateHabit({ uuid: mine.uuid, accountLogicalId: fleet.logicalId }, ['account_logical_id']), false],
      ['make it global', () => api.updateHabit({ uuid: mine.uuid, accountLogicalId: undefined }, ['account_logical_id']), true],
      ['delete it', () => api.deleteHabit(mine.uuid), true],
    ];
    let previous = start;
    for (const [name, step, global] of steps) {
      await step();
      await replica.synced();
      const now = await versions();
      expect(now[0], name).not.toBe(previous[0]);
      expect(now[1] !== previous[1], `${name}: global version moved`).toBe(global);
      previous = now;
    }
  });
});
