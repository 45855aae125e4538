import { status } from '@grpc/grpc-js';
import type { DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failure, uniqueInt } from '@titanbot/write/test-support/harness';
import { adminApi, provisionDevice, uniquePixel, uniqueShape } from './support/admin.js';
import { checkVersion, download, openExport, sha256 } from './support/daemon.js';
import { expectedExport, exportRows } from './support/expected.js';
import { startSystem, type Replica, type System } from './support/system.js';

let sys: System;
let replica: Replica;
let daemon: DaemonServiceClient;
let api: ReturnType<typeof adminApi>;
let fleet: Awaited<ReturnType<typeof provisionDevice>>;

beforeAll(async () => {
  sys = await startSystem();
  api = adminApi(sys.write);
  fleet = await provisionDevice(api);
  // Small chunks so a download of a few habits spans many messages.
  replica = await sys.startReplica({ EXPORT_CHUNK_BYTES: '1024' });
  await replica.service.consumer.caughtUp;
  await replica.synced();
  daemon = replica.daemon();
});
afterAll(async () => {
  await sys?.stop();
});

const check = (known = '', logicalId: number | undefined = fleet.logicalId) => checkVersion(daemon, fleet.token, logicalId, known);

/** Downloads the scope's latest export and checks it against the write side's rows. */
async function expectExportMatchesWriteSide(logicalId: number | undefined = fleet.logicalId): Promise<string> {
  const got = await download(daemon, fleet.token, { logicalId });
  expect(got.bytes.length).toBe(got.header.sizeBytes);
  expect(sha256(got.bytes)).toBe(got.header.sha256);
  const file = openExport(got.bytes);
  try {
    expect(exportRows(file)).toEqual(await expectedExport(sys.db, logicalId));
  } finally {
    file.close();
  }
  return got.header.version;
}

describe('versions and exports of one scope', () => {
  it('change exactly when what the scope exports changes, and every file holds what the write side says it should', async () => {
    const v1 = (await check()).version;
    expect(v1).toMatch(/^[0-9a-f]{32}$/);
    expect(await check(v1)).toEqual({ version: v1, changed: false });
    await expectExportMatchesWriteSide();

    // A habit of another account leaves the scope alone.
    const other = await api.createAccount();
    await api.createHabit({ accountLogicalId: other.logicalId, action: 'elsewhere', pixels: [uniquePixel()] });
    await replica.synced();
    expect(await check(v1)).toEqual({ version: v1, changed: false });

    // Each of these changes the version, and the new file matches the write side.
    let previous = v1;
    const expectChanged = async (what: string): Promise<void> => {
      await replica.synced();
      const now = await check(previous);
      expect(now.changed, what).toBe(true);
      expect(await check(now.version), what).toEqual({ version: now.version, changed: false });
      expect(await expectExportMatchesWriteSide(), what).toBe(now.version);
      previous = now.version;
    };

    const habit = await api.createHabit({ accountLogicalId: fleet.logicalId, priority: 5, action: 'tap', pixels: [uniquePixel(), uniquePixel()], shapes: [uniqueShape()] });
    await expectChanged('new habit');

    await api.updateHabit({ uuid: habit.uuid, priority: 9, comment: 'updated' }, ['priority', 'comment']);
    await expectChanged('update');

    await api.updateHabit({ uuid: habit.uuid, pixels: [uniquePixel()] }, ['pixels']);
    await expectChanged('pixel-list replacement');

    await api.updateHabit({ uuid: habit.uuid, isActive: false }, ['is_active']);
    await expectChanged('deactivation');

    const mover = await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'moving' });
    await expectChanged('second habit');
    await api.updateHabit({ uuid: mover.uuid, accountLogicalId: other.logicalId }, ['account_logical_id']);
    await expectChanged('move to another account');

    const doomed = await api.createHabit({ accountLogicalId: fleet.logicalId, priority: 1, shapes: [uniqueShape()] });
    await expectChanged('third habit');
    await api.deleteHabit(doomed.uuid);
    await expectChanged('delete');

    const global = await api.createHabit({ action: 'everyone', pixels: [uniquePixel()] });
    await expectChanged('global habit');
    await expectExportMatchesWriteSide(undefined);

    // Changes inside the other account never touched this scope.
    await api.updateHabit({ uuid: mover.uuid, comment: 'still elsewhere' }, ['comment']);
    await replica.synced();
    expect((await check(previous)).changed).toBe(false);
    await api.deleteHabit(global.uuid);
    await replica.synced();
    expect((await check(previous)).changed).toBe(true);
  });

  it('writes exactly the docs/domain.md schema; an empty scope gives the schema alone', async () => {
    const got = await download(daemon, fleet.token, { logicalId: fleet.logicalId });
    expect(got.header).toMatchObject({ fileName: 'titanbotd.sqlite', mediaType: 'application/vnd.sqlite3', schemaVersion: 1 });
    const file = openExport(got.bytes);
    const info = (table: string) =>
      (file.prepare(`pragma table_info(${table})`).all() as { name: string; type: string; notnull: number; pk: number; dflt_value: unknown }[]).map((c) => [
        c.name,
        c.type,
        c.notnull,
        c.pk,
        c.dflt_value,
      ]);
    const tables = file.prepare("select name from sqlite_master where type = 'table' order by name").pluck().all();
    expect(tables).toEqual(['colors', 'dots', 'habit_pixels', 'habit_shapes', 'habits', 'pixels', 'shapes']);
    expect(info('habits')).toEqual([
      ['uuid', 'BLOB', 1, 1, null],
      ['is_active', 'INTEGER', 1, 0, null],
      ['account_logical_id', 'INTEGER', 0, 0, null],
      ['priority', 'INTEGER', 0, 0, null],
      ['trigger_shell', 'TEXT', 0, 0, null],
      ['log_template', 'TEXT', 0, 0, null],
      ['post_timeout_ms', 'INTEGER', 0, 0, null],
      ['action', 'TEXT', 0, 0, null],
      ['comment', 'TEXT', 0, 0, null],
      ['sequence', 'INTEGER', 0, 0, null],
      ['context', 'TEXT', 0, 0, null],
      ['is_interruption', 'INTEGER', 1, 0, '1'],
      ['updated_at', 'TEXT', 1, 0, null],
    ]);
    expect(info('habit_pixels')).toEqual([
      ['habit_uuid', 'BLOB', 1, 1, null],
      ['pixel_uuid', 'BLOB', 1, 2, null],
    ]);
    expect(info('pixels')).toEqual([
      ['uuid', 'BLOB', 1, 1, null],
      ['dot_uuid', 'BLOB', 1, 0, null],
      ['color_uuid', 'BLOB', 1, 0, null],
    ]);
    expect(info('dots')).toEqual([
      ['uuid', 'BLOB', 1, 1, null],
      ['x', 'INTEGER', 1, 0, null],
      ['y', 'INTEGER', 1, 0, null],
    ]);
    expect(info('colors')).toEqual([
      ['uuid', 'BLOB', 1, 1, null],
      ['rgb_hex', 'TEXT', 1, 0, null],
      ['deviation', 'INTEGER', 0, 0, null],
    ]);
    expect(info('habit_shapes')).toEqual([
      ['habit_uuid', 'BLOB', 1, 1, null],
      ['shape_uuid', 'BLOB', 1, 2, null],
    ]);
    expect(info('shapes')).toEqual([
      ['uuid', 'BLOB', 1, 1, null],
      ['type', 'TEXT', 1, 0, null],
      ['x', 'INTEGER', 1, 0, null],
      ['y', 'INTEGER', 1, 0, null],
      ['width', 'INTEGER', 1, 0, null],
      ['height', 'INTEGER', 1, 0, null],
      ['rgb_hex', 'TEXT', 1, 0, null],
      ['size', 'INTEGER', 1, 0, null],
    ]);
    file.close();
  });

  it('stores uuids as the original exporter did: TEXT holding their 16 raw bytes, joinable', async () => {
    const habit = await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'storage class', pixels: [uniquePixel()], shapes: [uniqueShape()] });
    await replica.synced();
    const file = openExport((await download(daemon, fleet.token, { logicalId: fleet.logicalId })).bytes);
    try {
      const columns: [string, string][] = [
        ['habits', 'uuid'], ['habit_pixels', 'habit_uuid'], ['habit_pixels', 'pixel_uuid'], ['pixels', 'uuid'], ['pixels', 'dot_uuid'],
        ['pixels', 'color_uuid'], ['dots', 'uuid'], ['colors', 'uuid'], ['habit_shapes', 'habit_uuid'], ['habit_shapes', 'shape_uuid'], ['shapes', 'uuid'],
      ];
      for (const [table, column] of columns) {
        expect(file.prepare(`select distinct typeof(${column}) || ':' || length(cast(${column} as blob)) from ${table}`).pluck().all(), `${table}.${column}`).toEqual(['text:16']);
      }
      const hex = habit.uuid.replace(/-/g, '').toUpperCase();
      expect(file.prepare(`select action from habits where uuid = cast(x'${hex}' as text)`).pluck().get()).toBe('storage class');
      expect(file.prepare(`select count(*) from habits where uuid = x'${hex}'`).pluck().get()).toBe(0);
      const joined = file
        .prepare(
          `select d.x, c.rgb_hex from habits h join habit_pixels hp on hp.habit_uuid = h.uuid join pixels p on p.uuid = hp.pixel_uuid
           join dots d on d.uuid = p.dot_uuid join colors c on c.uuid = p.color_uuid where hex(h.uuid) = ?`,
        )
        .all(hex);
      expect(joined).toEqual([{ x: habit.pixels[0]!.x, rgb_hex: habit.pixels[0]!.rgbHex }]);
    } finally {
      file.close();
    }
  });

  it('gives byte-identical files for one version, from the cache and from a fresh build on another replica', async () => {
    const first = await download(daemon, fleet.token, { logicalId: fleet.logicalId });
    const again = await download(daemon, fleet.token, { logicalId: fleet.logicalId, version: first.header.version });
    expect(again.bytes.equals(first.bytes)).toBe(true);

    const second = await sys.startReplica();
    try {
      await second.service.consumer.caughtUp;
      await second.synced();
      const rebuilt = await download(second.daemon(), fleet.token, { logicalId: fleet.logicalId });
      expect(rebuilt.header.version).toBe(first.header.version);
      expect(rebuilt.header.sha256).toBe(first.header.sha256);
      expect(rebuilt.bytes.equals(first.bytes)).toBe(true);
    } finally {
      await second.stop();
    }
  });

  it('resumes a download cut after the first chunks from its offset to an identical file', async () => {
    // Enough rows for many 1 KiB chunks.
    for (let i = 0; i < 20; i++) await api.createHabit({ accountLogicalId: fleet.logicalId, comment: 'x'.repeat(200), pixels: [uniquePixel()] });
    await replica.synced();
    const full = await download(daemon, fleet.token, { logicalId: fleet.logicalId });
    expect(full.chunkOffsets.length).toBeGreaterThan(5);

    const cut = await download(daemon, fleet.token, { logicalId: fleet.logicalId }, 3);
    expect(cut.bytes.length).toBe(3 * 1024);
    // The scope moves on meanwhile; the pinned version still resumes.
    await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'newer' });
    await replica.synced();
    const rest = await download(daemon, fleet.token, { logicalId: fleet.logicalId, version: cut.header.version, offset: cut.bytes.length });
    expect(rest.header).toEqual(cut.header);
    expect(rest.chunkOffsets[0]).toBe(cut.bytes.length);
    const joined = Buffer.concat([cut.bytes, rest.bytes]);
    expect(joined.equals(full.bytes)).toBe(true);
    expect(sha256(joined)).toBe(cut.header.sha256);

    // At the very end: a header and no chunks.
    const atEnd = await download(daemon, fleet.token, { logicalId: fleet.logicalId, version: cut.header.version, offset: cut.header.sizeBytes });
    expect(atEnd.bytes.length).toBe(0);
    const past = await failure(download(daemon, fleet.token, { logicalId: fleet.logicalId, version: cut.header.version, offset: cut.header.sizeBytes + 1 }));
    expect([past.code, past.reason]).toEqual([status.OUT_OF_RANGE, 'OFFSET_OUT_OF_RANGE']);
  });

  it('answers FAILED_PRECONDITION for a pinned version no longer kept, and PERMISSION_DENIED for another account\'s scope', async () => {
    const current = (await check()).version;
    const gone = await failure(download(daemon, fleet.token, { logicalId: fleet.logicalId, version: `${current.split('.')[0]}.1`, offset: 10 }));
    expect([gone.code, gone.reason]).toEqual([status.FAILED_PRECONDITION, 'EXPORT_VERSION_GONE']);

    const stranger = uniqueInt();
    for (const attempt of [check('', stranger), download(daemon, fleet.token, { logicalId: stranger })]) {
      const denied = await failure(attempt);
      expect([denied.code, denied.reason]).toEqual([status.PERMISSION_DENIED, 'SCOPE_NOT_OF_DEVICE']);
    }
  });

  it('evicts least recently used exports beyond EXPORT_CACHE_BYTES', async () => {
    const small = await sys.startReplica({ EXPORT_CACHE_BYTES: '1' });
    try {
      await small.service.consumer.caughtUp;
      await small.synced();
      const client = small.daemon();
      const scoped = await download(client, fleet.token, { logicalId: fleet.logicalId });
      await download(client, fleet.token, {});
      // Only the newest file stays.
      expect(small.service.exports.stats()).toMatchObject({ entries: 1, evictions: 1, builds: 2 });
      // The scope's version has not moved, so a resume of it is served from a rebuild, byte-identical
      // (builds are deterministic); only versions older than the current one can be gone.
      const resumed = await download(client, fleet.token, { logicalId: fleet.logicalId, version: scoped.header.version, offset: 100 });
      expect(resumed.header).toEqual(scoped.header);
      expect(resumed.bytes.equals(scoped.bytes.subarray(100))).toBe(true);
      expect(small.service.exports.stats()).toMatchObject({ builds: 3 });
    } finally {
      await small.stop();
    }
  });
});
