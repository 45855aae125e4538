import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import {
  DaemonTokenServiceClient,
  GetDaemonTokenRequest,
  IssueDaemonTokenRequest,
  ListDaemonTokensRequest,
  RevokeDaemonTokenRequest,
} from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { CreateDeviceRequest, DeviceServiceClient } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import {
  CreateEmpireDateRequest,
  DeleteEmpireDateRequest,
  EmpireDateServiceClient,
  GetNextEmpireDateRequest,
  ListEmpireDatesRequest,
} from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import {
  CreateHabitRequest,
  DeleteHabitRequest,
  GetHabitRequest,
  HabitServiceClient,
  ShapeType,
  UpdateHabitRequest,
  type Habit,
  type Pixel,
  type Shape,
} from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { CreateLegionRequest, LegionServiceClient } from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { ClearLogsRequest, ListLogsRequest, LogServiceClient } from '@titanbot/contracts/titanbot/admin/v1/log_service';
import { ChangeFeedServiceClient, IngestLogsRequest } from '@titanbot/contracts/titanbot/feed/v1/change_feed_service';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { call, failure, startHarness, uniqueInt, type Harness } from './support/harness.js';

let h: Harness;
let db: pg.Client;
let habits: HabitServiceClient;
let devices: DeviceServiceClient;
let legions: LegionServiceClient;
let empireDates: EmpireDateServiceClient;
let tokens: DaemonTokenServiceClient;
let logs: LogServiceClient;
let feed: ChangeFeedServiceClient;

beforeAll(async () => {
  h = await startHarness();
  db = new pg.Client({ connectionString: inject('databaseUrl') });
  await db.connect();
  habits = h.client(HabitServiceClient);
  devices = h.client(DeviceServiceClient);
  legions = h.client(LegionServiceClient);
  empireDates = h.client(EmpireDateServiceClient);
  tokens = h.client(DaemonTokenServiceClient);
  logs = h.client(LogServiceClient);
  feed = h.client(ChangeFeedServiceClient);
});
afterAll(async () => {
  await db?.end();
  await h.stop();
});

const createHabit = (habit: Partial<Habit>) => call(habits, habits.createHabit, CreateHabitRequest.fromPartial({ habit }), h.adminToken);
const getHabit = (uuid: string) => call(habits, habits.getHabit, GetHabitRequest.fromPartial({ uuid }), h.adminToken);
const updateHabit = (habit: Partial<Habit>, updateMask: string[]) =>
  call(habits, habits.updateHabit, UpdateHabitRequest.fromPartial({ habit, updateMask }), h.adminToken);
const deleteHabit = (uuid: string) => call(habits, habits.deleteHabit, DeleteHabitRequest.fromPartial({ uuid }), h.adminToken);
const createDevice = () =>
  call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() } }), h.adminToken);

/** Rows stored for a pixel value: [dots, colors, pixels]. */
async function pixelRows(p: Pixel): Promise<[number, number, number]> {
  const q = async (sql: string, params: unknown[]) => Number((await db.query<{ n: string }>(sql, params)).rows[0]!.n);
  return [
    await q('select count(*) as n from dots where x = $1 and y = $2', [p.x, p.y]),
    await q('select count(*) as n from colors where rgb_hex = $1 and deviation = $2', [p.rgbHex.toUpperCase(), p.deviation]),
    await q(
      `select count(*) as n from pixels p join dots d on d.uuid = p.dot_uuid join colors c on c.uuid = p.color_uuid
        where d.x = $1 and d.y = $2 and c.rgb_hex = $3 and c.deviation = $4`,
      [p.x, p.y, p.rgbHex.toUpperCase(), p.deviation],
    ),
  ];
}

async function shapeRows(s: Shape): Promise<number> {
  const r = await db.query<{ n: string }>('select count(*) as n from shapes where x = $1 and y = $2 and width = $3 and height = $4', [
    s.x,
    s.y,
    s.width,
    s.height,
  ]);
  return Number(r.rows[0]!.n);
}

/** A pixel no other test uses: unique coordinates and deviation. */
const uniquePixel = (rgbHex = 'a1b2c3'): Pixel => ({ x: uniqueInt(), y: uniqueInt(), rgbHex, deviation: uniqueInt() });
const uniqueShape = (type = ShapeType.SHAPE_TYPE_RECTANGLE): Shape => ({
  type,
  x: uniqueInt(),
  y: uniqueInt(),
  width: 10,
  height: 20,
  size: 3,
  rgbHex: 'ff00aa',
});

describe('habits', () => {
  it('creates a habit with pixels and shapes and reads both lists back in order, rgb_hex upper-cased (OK)', async () => {
    const p1 = uniquePixel('abcdef');
    const p2 = { ...uniquePixel('0a0b0c'), deviation: 0 };
    const s1 = uniqueShape(ShapeType.SHAPE_TYPE_CIRCLE);
    const s2 = uniqueShape(ShapeType.SHAPE_TYPE_IRREGULAR);
    const logicalId = uniqueInt();
    const created = await createHabit({ accountLogicalId: logicalId, priority: 5, action: 'tap', comment: 'c', pixels: [p1, p2], shapes: [s1, s2] });
    const got = await getHabit(created.uuid);
    expect(got).toEqual(created);
    expect(got.pixels).toEqual([
      { ...p1, rgbHex: 'ABCDEF' },
      { ...p2, rgbHex: '0A0B0C' },
    ]);
    expect(got.shapes).toEqual([
      { ...s1, rgbHex: 'FF00AA' },
      { ...s2, rgbHex: 'FF00AA' },
    ]);
    expect(got).toMatchObject({ accountLogicalId: logicalId, priority: 5, action: 'tap', comment: 'c', isActive: true, isInterruption: true });
  });

  it('a habit created with only action has no shapes, no pixels and no priority (OK)', async () => {
    const created = await createHabit({ action: 'only-action' });
    const got = await getHabit(created.uuid);
    expect(got.action).toBe('only-action');
    expect(got.shapes).toEqual([]);
    expect(got.pixels).toEqual([]);
    expect(got.priority).toBeUndefined();
    expect(got.accountLogicalId).toBeUndefined();
    expect(got.isActive).toBe(true);
    expect(got.isInterruption).toBe(true);
  });

  it('updates scalars and moves updated_at strictly forward on every update (OK)', async () => {
    const created = await createHabit({ action: 'a', priority: 1 });
    let previous = created.updatedAt!;
    let etag = created.etag;
    const steps: [Partial<Habit>, string[]][] = [
      [{ priority: 2, triggerShell: 'echo hi', logTemplate: 'L {x}' }, ['priority', 'trigger_shell', 'log_template']],
      [{ postTimeoutMs: 250, sequence: 7, context: 'ctx', isInterruption: false }, ['post_timeout_ms', 'sequence', 'context', 'is_interruption']],
      [{ isActive: false, comment: 'off' }, ['is_active', 'comment']],
      [{}, ['priority']],
    ];
    for (const [fields, mask] of steps) {
      const updated = await updateHabit({ uuid: created.uuid, etag, ...fields }, mask);
      expect(updated.updatedAt!.getTime()).toBeGreaterThan(previous.getTime());
      expect(updated.etag).not.toBe(etag);
      previous = updated.updatedAt!;
      etag = updated.etag;
    }
    const got = await getHabit(created.uuid);
    expect(got).toMatchObject({
      action: 'a',
      priority: undefined,
      triggerShell: 'echo hi',
      logTemplate: 'L {x}',
      postTimeoutMs: 250,
      sequence: 7,
      context: 'ctx',
      isInterruption: false,
      isActive: false,
      comment: 'off',
    });
    expect(got.updatedAt).toEqual(previous);
  });

  it('shares stored pixel rows between habits, and replacing pixels keeps the shared one and removes the orphan', async () => {
    const shared = uniquePixel('123abc');
    const onlyA = uniquePixel('def456');
    const replacement = uniquePixel('778899');
    const a = await createHabit({ action: 'a', pixels: [shared, onlyA] });
    const b = await createHabit({ action: 'b', pixels: [shared] });
    expect(await pixelRows(shared)).toEqual([1, 1, 1]);
    expect(await pixelRows(onlyA)).toEqual([1, 1, 1]);

    const updated = await updateHabit({ uuid: a.uuid, pixels: [replacement] }, ['pixels']);
    expect(updated.pixels).toEqual([{ ...replacement, rgbHex: '778899' }]);
    expect(await pixelRows(onlyA)).toEqual([0, 0, 0]);
    expect(await pixelRows(shared)).toEqual([1, 1, 1]);
    expect(await pixelRows(replacement)).toEqual([1, 1, 1]);
    expect((await getHabit(b.uuid)).pixels).toEqual([{ ...shared, rgbHex: '123ABC' }]);

    // Now `shared` is B's alone: deleting B removes it.
    await deleteHabit(b.uuid);
    expect(await pixelRows(shared)).toEqual([0, 0, 0]);
    expect(await pixelRows(replacement)).toEqual([1, 1, 1]);
  });

  it('deleting a habit removes its orphan pixels and shapes but keeps shapes another habit uses; then GetHabit is NOT_FOUND', async () => {
    const px = uniquePixel();
    const own = uniqueShape();
    const sharedShape = uniqueShape(ShapeType.SHAPE_TYPE_TRIANGLE);
    const a = await createHabit({ action: 'a', pixels: [px], shapes: [own, sharedShape] });
    const b = await createHabit({ action: 'b', shapes: [sharedShape] });
    expect(await shapeRows(own)).toBe(1);
    expect(await shapeRows(sharedShape)).toBe(1);
    await deleteHabit(a.uuid);
    expect(await pixelRows(px)).toEqual([0, 0, 0]);
    expect(await shapeRows(own)).toBe(0);
    expect(await shapeRows(sharedShape)).toBe(1);
    expect((await failure(getHabit(a.uuid))).code).toBe(status.NOT_FOUND);
    await deleteHabit(b.uuid);
    expect(await shapeRows(sharedShape)).toBe(0);
  });

  it('rejects shape type SHAPE_TYPE_UNSPECIFIED with INVALID_ARGUMENT naming habit.shapes[0].type', async () => {
    const err = await failure(createHabit({ shapes: [uniqueShape(ShapeType.SHAPE_TYPE_UNSPECIFIED)] }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(['habit.shapes[0].type']);
  });

  it('names every violation of a habit at once, an unknown shape type among them', async () => {
    const err = await failure(createHabit({ pixels: [{ ...uniquePixel(), x: 0 }], shapes: [{ ...uniqueShape(99 as ShapeType), rgbHex: 'nope' }] }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(['habit.pixels[0].x', 'habit.shapes[0].type', 'habit.shapes[0].rgb_hex']);
  });

  it("rejects rgb_hex 'XYZ' with INVALID_ARGUMENT naming habit.pixels[0].rgb_hex", async () => {
    const err = await failure(createHabit({ pixels: [{ ...uniquePixel(), rgbHex: 'XYZ' }] }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(['habit.pixels[0].rgb_hex']);
  });

  it('rejects pixel x 0 with INVALID_ARGUMENT naming habit.pixels[0].x', async () => {
    const err = await failure(createHabit({ pixels: [{ ...uniquePixel(), x: 0 }] }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(['habit.pixels[0].x']);
  });

  it('rejects pay_day_of_month 32 with INVALID_ARGUMENT naming legion.pay_day_of_month', async () => {
    const err = await failure(
      call(legions, legions.createLegion, CreateLegionRequest.fromPartial({ legion: { title: 'T', payDayOfMonth: 32 } }), h.adminToken),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(['legion.pay_day_of_month']);
  });
});

describe('empire dates', () => {
  const DAY = 86_400_000;
  const dayString = (offsetDays: number): string => new Date(Date.now() + offsetDays * DAY).toISOString().slice(0, 10);
  /** docs/domain.md: 03:00 UTC on the date if it is a Monday, else on the following Monday. */
  const mondayAt3 = (date: string): Date => {
    const d = new Date(`${date}T03:00:00Z`);
    while (d.getUTCDay() !== 1) d.setUTCDate(d.getUTCDate() + 1);
    return d;
  };
  const create = (date: string) =>
    call(empireDates, empireDates.createEmpireDate, CreateEmpireDateRequest.fromPartial({ empireDate: { date: new Date(`${date}T00:00:00Z`) } }), h.adminToken);
  const next = () => call(empireDates, empireDates.getNextEmpireDate, GetNextEmpireDateRequest.fromPartial({}), h.adminToken);

  beforeAll(async () => {
    // This file is the only one using empire dates; start from none.
    for (;;) {
      const page = await call(empireDates, empireDates.listEmpireDates, ListEmpireDatesRequest.fromPartial({ pageSize: 1000 }), h.adminToken);
      if (page.empireDates.length === 0) break;
      for (const e of page.empireDates) {
        await call(empireDates, empireDates.deleteEmpireDate, DeleteEmpireDateRequest.fromPartial({ uuid: e.uuid }), h.adminToken);
      }
    }
  });

  it('GetNextEmpireDate applies the Monday-03:00-UTC rule to the one-week date, then to the two-week date after deleting it, then is unset', async () => {
    const weekAgo = dayString(-7);
    const inOneWeek = dayString(7);
    const inTwoWeeks = dayString(14);
    expect(await next()).toEqual({ nextTime: undefined });
    await create(weekAgo);
    expect((await next()).nextTime).toBeUndefined();
    const one = await create(inOneWeek);
    const two = await create(inTwoWeeks);
    expect(one.date).toEqual(new Date(`${inOneWeek}T00:00:00Z`));
    expect((await next()).nextTime).toEqual(mondayAt3(inOneWeek));

    await call(empireDates, empireDates.deleteEmpireDate, DeleteEmpireDateRequest.fromPartial({ uuid: one.uuid }), h.adminToken);
    expect((await next()).nextTime).toEqual(mondayAt3(inTwoWeeks));

    await call(empireDates, empireDates.deleteEmpireDate, DeleteEmpireDateRequest.fromPartial({ uuid: two.uuid }), h.adminToken);
    expect((await next()).nextTime).toBeUndefined();
  });

  it('rejects a duplicate empire date with ALREADY_EXISTS', async () => {
    const date = dayString(400);
    await create(date);
    const err = await failure(create(date));
    expect(err.code).toBe(status.ALREADY_EXISTS);
  });
});

describe('daemon tokens', () => {
  it('IssueDaemonToken returns a tbd_ token once; Get and List never contain the plaintext; revoke sets revoke_time', async () => {
    const device = await createDevice();
    const issued = await call(
      tokens,
      tokens.issueDaemonToken,
      IssueDaemonTokenRequest.fromPartial({ deviceUuid: device.uuid, ttl: { seconds: 3600 } }),
      h.adminToken,
    );
    expect(issued.token).toMatch(/^tbd_[0-9A-Za-z]{33}$/);
    const t = issued.daemonToken!;
    expect(t.deviceUuid).toBe(device.uuid);
    expect(issued.token.startsWith(t.prefix)).toBe(true);
    expect(t.prefix.length).toBeLessThan(issued.token.length);
    expect(t.expireTime!.getTime() - t.createTime!.getTime()).toBe(3_600_000);
    expect(t.revokeTime).toBeUndefined();
    expect(JSON.stringify(t)).not.toContain(issued.token);

    const got = await call(tokens, tokens.getDaemonToken, GetDaemonTokenRequest.fromPartial({ uuid: t.uuid }), h.adminToken);
    expect(got).toEqual(t);
    expect(JSON.stringify(got)).not.toContain(issued.token);
    const list = await call(tokens, tokens.listDaemonTokens, ListDaemonTokensRequest.fromPartial({ deviceUuid: device.uuid }), h.adminToken);
    expect(list.daemonTokens.map((x) => x.uuid)).toEqual([t.uuid]);
    expect(JSON.stringify(list)).not.toContain(issued.token);
    const secretPart = issued.token.slice(t.prefix.length);
    expect(JSON.stringify(list)).not.toContain(secretPart);

    const revoked = await call(tokens, tokens.revokeDaemonToken, RevokeDaemonTokenRequest.fromPartial({ uuid: t.uuid }), h.adminToken);
    expect(revoked.revokeTime).toBeInstanceOf(Date);
    expect((await call(tokens, tokens.getDaemonToken, GetDaemonTokenRequest.fromPartial({ uuid: t.uuid }), h.adminToken)).revokeTime).toEqual(
      revoked.revokeTime,
    );
  });

  it('rejects a ttl above 30 days with INVALID_ARGUMENT naming ttl', async () => {
    const device = await createDevice();
    const err = await failure(
      call(tokens, tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid: device.uuid, ttl: { seconds: 30 * 86_400 + 1 } }), h.adminToken),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(['ttl']);
  });

  it('rejects issuing for an unknown device with NOT_FOUND', async () => {
    const err = await failure(call(tokens, tokens.issueDaemonToken, IssueDaemonTokenRequest.fromPartial({ deviceUuid: randomUUID() }), h.adminToken));
    expect(err.code).toBe(status.NOT_FOUND);
  });
});

describe('logs', () => {
  const ingest = (deviceUuid: string, lines: string[], requestId = '') =>
    call(feed, feed.ingestLogs, IngestLogsRequest.fromPartial({ deviceUuid, lines: lines.map((line) => ({ line })), requestId }), h.readerToken);
  const list = async (deviceUuid: string, contains = '') =>
    (await call(logs, logs.listLogs, ListLogsRequest.fromPartial({ deviceUuid, contains, pageSize: 1000 }), h.adminToken)).logEntries.map(
      (e) => e.line,
    );

  it('a bulk write keeps its order in ListLogs filtered by device_uuid (OK)', async () => {
    const device = await createDevice();
    const other = await createDevice();
    const lines = Array.from({ length: 50 }, (_, i) => `line ${String(49 - i).padStart(2, '0')} ${randomUUID()}`);
    expect((await ingest(device.uuid, lines)).acceptedCount).toBe(50);
    await ingest(other.uuid, ['someone else']);
    expect(await list(device.uuid)).toEqual(lines);
  });

  it('the contains filter returns exactly the lines holding the literal substring (no shell or LIKE semantics)', async () => {
    const device = await createDevice();
    const lines = [
      'start; rm -rf /',
      'echo $(whoami) && ls | grep x',
      'progress 100% done',
      'snake_case_name',
      "quote ' and \" and `tick`",
      'plain line',
      'abc',
      'aXc',
    ];
    await ingest(device.uuid, lines);
    expect(await list(device.uuid, '; rm -rf /')).toEqual(['start; rm -rf /']);
    expect(await list(device.uuid, '%')).toEqual(['progress 100% done']);
    expect(await list(device.uuid, '_')).toEqual(['snake_case_name']);
    expect(await list(device.uuid, 'a_c')).toEqual([]);
    expect(await list(device.uuid, '$(whoami)')).toEqual(['echo $(whoami) && ls | grep x']);
    expect(await list(device.uuid, "' and \"")).toEqual(["quote ' and \" and `tick`"]);
    expect(await list(device.uuid, 'line')).toEqual(['plain line']);
    expect(await list(device.uuid, '.*')).toEqual([]);
    expect(await list(device.uuid, 'no such text')).toEqual([]);
  });

  it('order_by "log_time desc" pages newest first; a token of one order is refused in the other; an unknown order is INVALID_ARGUMENT', async () => {
    const device = await createDevice();
    const lines = Array.from({ length: 5 }, (_, i) => `line ${i}`);
    await ingest(device.uuid, lines);
    const page = (orderBy: string, pageToken = '') => call(logs, logs.listLogs, ListLogsRequest.fromPartial({ deviceUuid: device.uuid, pageSize: 2, orderBy, pageToken }), h.adminToken);
    const newest: string[] = [];
    let token = '';
    do {
      const p = await page('log_time desc', token);
      newest.push(...p.logEntries.map((e) => e.line));
      token = p.nextPageToken;
    } while (token);
    expect(newest).toEqual([...lines].reverse());
    const first = await page('log_time desc');
    expect((await failure(page('log_time', first.nextPageToken))).fields).toEqual(['page_token']);
    expect((await page('log_time')).logEntries.map((e) => e.line)).toEqual(lines.slice(0, 2));
    const unknown = await failure(page('line desc'));
    expect([unknown.code, unknown.fields]).toEqual([status.INVALID_ARGUMENT, ['order_by']]);
  });

  it('ClearLogs for a device empties its logs and leaves other devices alone (OK)', async () => {
    const device = await createDevice();
    const other = await createDevice();
    await ingest(device.uuid, ['a', 'b', 'c']);
    await ingest(other.uuid, ['keep']);
    const cleared = await call(logs, logs.clearLogs, ClearLogsRequest.fromPartial({ deviceUuid: device.uuid }), h.adminToken);
    expect(cleared.deletedCount).toBe(3);
    expect(await list(device.uuid)).toEqual([]);
    expect(await list(other.uuid)).toEqual(['keep']);
  });

  it('IngestLogs with the same request_id twice stores the lines once', async () => {
    const device = await createDevice();
    const requestId = randomUUID();
    const first = await ingest(device.uuid, ['one', 'two'], requestId);
    const second = await ingest(device.uuid, ['one', 'two'], requestId);
    expect(first.acceptedCount).toBe(2);
    expect(second.acceptedCount).toBe(2);
    expect(await list(device.uuid)).toEqual(['one', 'two']);
  });

  it('IngestLogs for an unknown device is NOT_FOUND', async () => {
    const err = await failure(ingest(randomUUID(), ['x']));
    expect(err.code).toBe(status.NOT_FOUND);
  });

  it('stores a request once when it arrives many times at once, answering every copy with its count', async () => {
    const device = await createDevice();
    const requestId = randomUUID();
    const answers = await Promise.all(Array.from({ length: 12 }, () => ingest(device.uuid, ['once', 'only'], requestId)));
    expect(answers.map((a) => a.acceptedCount)).toEqual(Array.from({ length: 12 }, () => 2));
    expect(await list(device.uuid)).toEqual(['once', 'only']);
  });

  it('stores every line of many concurrent calls, each call\'s lines in its order, and refuses only the call for an unknown device', async () => {
    const devices = await Promise.all(Array.from({ length: 5 }, () => createDevice()));
    const calls = Array.from({ length: 40 }, (_, c) => ({ device: devices[c % devices.length]!.uuid, lines: Array.from({ length: 20 }, (_, i) => `call ${c} line ${i}`) }));
    const unknown = failure(ingest(randomUUID(), ['nobody']));
    const answers = await Promise.all(calls.map((c) => ingest(c.device, c.lines, randomUUID())));
    expect(answers.every((a) => a.acceptedCount === 20)).toBe(true);
    expect((await unknown).code).toBe(status.NOT_FOUND);
    for (const d of devices) {
      const stored = await list(d.uuid);
      const expected = calls.filter((c) => c.device === d.uuid).flatMap((c) => c.lines);
      expect([...stored].sort()).toEqual([...expected].sort());
      // Lines without a log_time are ordered by arrival, which keeps each call's order.
      for (const c of calls.filter((x) => x.device === d.uuid)) expect(stored.filter((l) => l.startsWith(`${c.lines[0]!.split(' line')[0]} line`))).toEqual(c.lines);
    }
  });
});
