/**
 * Moving the original system over, end to end against a real MariaDB: a database with the
 * original's schema (test/support/original-schema.sql) and a fixture is imported by `titanctl
 * import` (dry run, import, re-import), a daemon's original token is imported for its device, and
 * a scripted daemon of the original follows its HTTP flow on the replica's legacy port.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { status } from '@grpc/grpc-js';
import { DeviceServiceClient, GetDeviceRequest, GetDeviceSshRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { DeviceState, FleetServiceClient, ListDeviceStatusesRequest } from '@titanbot/contracts/titanbot/admin/v1/fleet_service';
import { GetHabitRequest, HabitServiceClient, ShapeType } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { ListLogsRequest, LogServiceClient } from '@titanbot/contracts/titanbot/admin/v1/log_service';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { call, failure, uniqueInt } from '@titanbot/write/test-support/harness';
import { generateSshKeyPair } from '@titanbot/write/test-support/ssh-keys';
import { startSystem, type Replica, type System } from '@titanbot/read/test-support/system';
import { runCaptured } from '../packages/titanctl/src/run-captured.test-support.js';

/** The MariaDB server these machines run (root, no password); MARIADB_URL overrides. */
const SERVER = process.env.MARIADB_URL ?? 'mysql://root@127.0.0.1:3306';
const DATABASE = `titanbot_original_${process.pid}_${randomBytes(3).toString('hex')}`;

/** A uuid v4 as 32 hex digits, as the original's app made them. */
const id = (): string => randomUUID().replace(/-/g, '');
const canonical = (hex: string): string => hex.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');

/** The fixture, with ids and business keys unique to this run (the test PostgreSQL is shared). */
const f = {
  legion: id(),
  accounts: [id(), id()],
  logicalIds: [uniqueInt(), uniqueInt()],
  devices: [id(), id()],
  physicalIds: [uniqueInt(), uniqueInt()],
  ssh: [id(), id()],
  // Below SSH_PORT_RANGE_START (18,800), where the write service allocates ports for the devices
  // other test files create in the shared database, and outside the ranges those files pick.
  ports: ((base) => [base, base + 1])(1_024 + (uniqueInt() % 17_000)),
  keys: [generateSshKeyPair('titanbot1'), generateSshKeyPair('titanbot2')],
  habits: { mine: id(), globalInactive: id(), other: id(), badPixel: id() },
  dots: [id(), id(), id()],
  colors: [id(), id()],
  pixels: [id(), id(), id()],
  shape: id(),
  empireDate: id(),
  empireDay: `${2200 + (uniqueInt() % 700)}-0${1 + (uniqueInt() % 9)}-1${uniqueInt() % 10}`,
  token: `original daemon token ${randomBytes(6).toString('hex')}`,
};
const x = (n: number): number => 1 + (uniqueInt() % 1_000_000) * 10 + n;
const dot = { x: [x(1), x(2)], y: [x(3), x(4)] };

let sys: System;
let replica: Replica;
let db: mysql.Connection;
const importUrl = `${SERVER}/${DATABASE}`;

beforeAll(async () => {
  db = await mysql.createConnection({ uri: SERVER, multipleStatements: true });
  await db.query(`create database ${DATABASE}`);
  await db.query(`use ${DATABASE}`);
  await db.query(await readFile(new URL('./support/original-schema.sql', import.meta.url), 'utf8'));
  const b = (hex: string) => Buffer.from(hex, 'hex');
  await db.query('insert into legions values (?, ?, null, 5)', [b(f.legion), 'Iron']);
  await db.query("insert into accounts values (?, ?, 'Ann', 'Lee', '1990-05-17', 'female', 'ann@example.com', 'pw-ann', 0, ?), (?, ?, 'Bob', 'Ray', '1985-01-02', 'male', 'bob@example.com', 'pw-bob', 1, null)", [
    b(f.accounts[0]!), f.logicalIds[0], b(f.legion), b(f.accounts[1]!), f.logicalIds[1],
  ]);
  for (const i of [0, 1]) await db.query('insert into ssh values (?, ?, ?, ?)', [b(f.ssh[i]!), `${f.keys[i]!.public}\n`, f.keys[i]!.private, f.ports[i]]);
  await db.query("insert into devices values (?, ?, 1, 1, 0, 'ajagplay', 1, 0, 120, ?, ?), (?, ?, 0, 0, 0, 'rowgplay', 0, 0, 100, null, ?)", [
    b(f.devices[0]!), f.physicalIds[0], b(f.accounts[0]!), b(f.ssh[0]!), b(f.devices[1]!), f.physicalIds[1], b(f.ssh[1]!),
  ]);
  await db.query('insert into device_accounts values (?, ?), (?, ?)', [b(f.devices[0]!), b(f.accounts[0]!), b(f.devices[0]!), b(f.accounts[1]!)]);
  await db.query("insert into habits values (?, ?, 7, 'input tap 1 2', 'did {x}', 500, 'mine', 3, 'ctx', 1, 'tap', 1, '2026-02-27 05:50:34'), (?, null, null, null, null, null, 'global off', null, null, 0, null, 0, '2026-02-27 05:50:34'), (?, ?, 1, null, null, null, 'other', null, null, 1, 'swipe', 1, '2026-02-27 05:50:34'), (?, ?, 2, null, null, null, 'bad pixel', null, null, 1, 'tap', 1, '2026-02-27 05:50:34')", [
    b(f.habits.mine), f.logicalIds[0], b(f.habits.globalInactive), b(f.habits.other), f.logicalIds[1], b(f.habits.badPixel), f.logicalIds[0],
  ]);
  await db.query('insert into dots values (?, ?, ?), (?, ?, ?), (?, 0, 5)', [b(f.dots[0]!), dot.x[0], dot.y[0], b(f.dots[1]!), dot.x[1], dot.y[1], b(f.dots[2]!)]);
  await db.query("insert into colors values (?, 'A1B2C3', 0), (?, 'ffffff', 4)", [b(f.colors[0]!), b(f.colors[1]!)]);
  await db.query('insert into pixels values (?, ?, ?), (?, ?, ?), (?, ?, ?)', [
    b(f.pixels[0]!), b(f.dots[0]!), b(f.colors[0]!), b(f.pixels[1]!), b(f.dots[1]!), b(f.colors[1]!), b(f.pixels[2]!), b(f.dots[2]!), b(f.colors[0]!),
  ]);
  await db.query('insert into habit_pixels values (?, ?), (?, ?), (?, ?)', [b(f.habits.mine), b(f.pixels[0]!), b(f.habits.mine), b(f.pixels[1]!), b(f.habits.badPixel), b(f.pixels[2]!)]);
  await db.query("insert into shapes values (?, 'circle', 3, 4, 5, 6, '00FF00', 7)", [b(f.shape)]);
  await db.query('insert into habit_shapes values (?, ?)', [b(f.habits.mine), b(f.shape)]);
  await db.query('insert into empire_dates values (?, ?)', [b(f.empireDate), f.empireDay]);
  await db.query('insert into daemon_tokens values (?, ?)', [b(id()), f.token]);

  sys = await startSystem();
  replica = await sys.startReplica({ LEGACY_HTTP_ADDR: '127.0.0.1:0', STATUS_REPORT_INTERVAL: '100ms' });
});
afterAll(async () => {
  await sys?.stop();
  await db?.query(`drop database if exists ${DATABASE}`);
  await db?.end();
});

/** titanctl against the test system's write service with its admin token. */
const ctl = (...argv: string[]) => runCaptured([...argv, '--server', sys.write.address, '--token', sys.write.adminToken]);
type Report = { table: string; read: number; created: number; skipped: number; rejected: { uuid: string; reason: string }[] }[];
const tables = (out: string): Record<string, Omit<Report[number], 'table'>> => Object.fromEntries((JSON.parse(out).tables as Report).map(({ table, ...rest }) => [table, rest]));

describe('moving the original system over', () => {
  it('imports the original database once, keeping uuids, SSH pairs and ports; a re-run skips everything', async () => {
    const devices = sys.write.client(DeviceServiceClient);
    const habits = sys.write.client(HabitServiceClient);

    // The dry run predicts the real run: every row checked by the write service (validate_only),
    // references to rows it would create first taken as satisfied, nothing changed.
    const headBefore = (await sys.db.query('select head_revision from feed_state')).rows[0].head_revision;
    const dry = await ctl('import', '--from', importUrl, '--dry-run');
    expect(dry.code, dry.err).toBe(1);
    const predicted = tables(dry.out);
    // What the first real run creates: everything but the habit with a pixel at x = 0.
    const firstRun = {
      legions: { read: 1, created: 1, skipped: 0 },
      accounts: { read: 2, created: 2, skipped: 0 },
      devices: { read: 2, created: 2, skipped: 0 },
      device_accounts: { read: 1, created: 1, skipped: 0 },
      habits: { read: 4, created: 3, skipped: 0 },
      empire_dates: { read: 1, created: 1, skipped: 0 },
    };
    expect(predicted, dry.out).toMatchObject(firstRun);
    expect((await failure(call(devices, devices.getDevice, GetDeviceRequest.fromPartial({ uuid: canonical(f.devices[0]!) }), sys.write.adminToken))).code).toBe(status.NOT_FOUND);
    expect((await sys.db.query('select head_revision from feed_state')).rows[0].head_revision).toBe(headBefore);
    // Not a terminal here: one JSON line per table on stderr.
    expect(dry.err.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l).table)).toEqual(['legions', 'accounts', 'devices', 'device_accounts', 'habits', 'empire_dates']);

    const first = await ctl('import', '--from', importUrl);
    // The habit with a pixel at x = 0 (the original's database never checked it) is refused, with the reason.
    expect(first.code, first.err).toBe(1);
    const report = tables(first.out);
    expect(report).toMatchObject(firstRun);
    expect(report.habits!.rejected).toEqual([{ uuid: canonical(f.habits.badPixel), reason: expect.stringMatching(/x/) }]);
    // Word for word what the dry run said.
    expect(predicted.habits!.rejected).toEqual(report.habits!.rejected);

    const device = await call(devices, devices.getDevice, GetDeviceRequest.fromPartial({ uuid: canonical(f.devices[0]!) }), sys.write.adminToken);
    expect(device).toMatchObject({ physicalId: f.physicalIds[0], isActive: true, isSsh: true, goTimeLimitSeconds: 120, currentAccountLogicalId: f.logicalIds[0] });
    expect([...device.accountLogicalIds].sort()).toEqual([...f.logicalIds].sort());
    const ssh = await call(devices, devices.getDeviceSsh, GetDeviceSshRequest.fromPartial({ deviceUuid: canonical(f.devices[0]!) }), sys.write.adminToken);
    expect(ssh).toMatchObject({ publicKey: f.keys[0]!.public.trim(), privateKey: f.keys[0]!.private, serverDeviceInternalPort: f.ports[0] });
    const habit = await call(habits, habits.getHabit, GetHabitRequest.fromPartial({ uuid: canonical(f.habits.mine) }), sys.write.adminToken);
    expect(habit).toMatchObject({ accountLogicalId: f.logicalIds[0], priority: 7, triggerShell: 'input tap 1 2', postTimeoutMs: 500, action: 'tap', isInterruption: true, isActive: true });
    expect(habit.pixels.map((p) => [p.x, p.y, p.rgbHex.toUpperCase(), p.deviation]).sort()).toEqual([[dot.x[0], dot.y[0], 'A1B2C3', 0], [dot.x[1], dot.y[1], 'FFFFFF', 4]].sort());
    expect(habit.shapes).toEqual([expect.objectContaining({ type: ShapeType.SHAPE_TYPE_CIRCLE, x: 3, y: 4, width: 5, height: 6, size: 7 })]);

    // After the import, a dry run says every row would be skipped (and the refused one refused again).
    const dryAgain = await ctl('import', '--from', importUrl, '--dry-run');
    expect(tables(dryAgain.out)).toMatchObject({
      legions: { created: 0, skipped: 1 },
      accounts: { created: 0, skipped: 2 },
      devices: { created: 0, skipped: 2 },
      device_accounts: { created: 0, skipped: 1 },
      habits: { created: 0, skipped: 3, rejected: report.habits!.rejected },
      empire_dates: { created: 0, skipped: 1 },
    });
    const again = await ctl('import', '--from', importUrl);
    expect(tables(again.out)).toMatchObject({
      legions: { created: 0, skipped: 1 },
      accounts: { created: 0, skipped: 2 },
      devices: { created: 0, skipped: 2 },
      device_accounts: { created: 0, skipped: 1 },
      habits: { created: 0, skipped: 3 },
      empire_dates: { created: 0, skipped: 1 },
    });
  });

  it("serves the original's daemon, with its own token imported, the imported data over its HTTP flow", async () => {
    const logs = sys.write.client(LogServiceClient);
    const imported = await ctl('legacy-tokens', 'import', '--device', canonical(f.devices[0]!), '--legacy-token', f.token);
    expect(imported.code, imported.err).toBe(0);
    await replica.synced();
    const http = (path: string, headers: Record<string, string> = {}) => fetch(`http://${replica.service.legacyHttpAddress}${path}`, { headers: { 'X-API-KEY': f.token, ...headers } });

    const devices = JSON.parse(await (await http(`/daemon/devices?physical_id=${f.physicalIds[0]}`)).text());
    expect(devices.uuid_to_device_map[canonical(f.devices[0]!)]).toMatchObject({ activity_type: 'ajagplay', is_ssh: true, current_logical_id: f.logicalIds[0] });
    const accounts = JSON.parse(await (await http(`/daemon/accounts?logical_id=${f.logicalIds[0]}`)).text());
    expect(accounts.uuid_to_account_map[canonical(f.accounts[0]!)]).toMatchObject({ google_password: 'pw-ann', birth_date: '1990-05-17T00:00:00+00:00' });
    const ssh = JSON.parse(await (await http(`/daemon/devices/${canonical(f.devices[0]!)}/ssh`)).text()).ssh;
    expect(ssh).toMatchObject({ public: `${f.keys[0]!.public.trim()}\n`, private: f.keys[0]!.private, server_device_internal_port: f.ports[0] });
    expect((await http(`/daemon/legions/${canonical(f.legion)}`)).status).toBe(200);
    expect((await http('/daemon/empire-dates-next')).status).toBe(200);
    // A migrating daemon polls the global checksum first, then its account's, then downloads.
    expect((await http('/daemon/db/checksum')).status).toBe(200);
    const checksum = JSON.parse(await (await http(`/daemon/db/checksum?logical_id=${f.logicalIds[0]}`)).text()).checksum as string;

    const res = await http(`/daemon/db?logical_id=${f.logicalIds[0]}`);
    expect(res.status).toBe(200);
    const bytes = Buffer.from(await res.arrayBuffer());
    // The fleet view has it current on its account's scope, holding the file it downloaded whole.
    const fleet = sys.write.client(FleetServiceClient);
    await vi.waitFor(
      async () => {
        const statuses = await call(fleet, fleet.listDeviceStatuses, ListDeviceStatusesRequest.fromPartial({ logicalId: f.logicalIds[0], pageSize: 1000 }), sys.write.adminToken);
        expect(statuses.deviceStatuses.find((d) => d.deviceUuid === canonical(f.devices[0]!))).toMatchObject({
          state: DeviceState.DEVICE_STATE_CURRENT,
          logicalId: f.logicalIds[0],
          heldVersion: checksum,
          currentVersion: checksum,
          heldSha256: createHash('sha256').update(bytes).digest('hex'),
        });
      },
      { timeout: 10_000, interval: 100 },
    );
    const part = await http(`/daemon/db?logical_id=${f.logicalIds[0]}`, { Range: 'bytes=0-1023' });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(0, 1024))).toBe(true);
    const file = new Database(bytes);
    const uuids = new Set(file.prepare('select lower(hex(uuid)) from habits').pluck().all() as string[]);
    // Of the account's own habits exactly the imported active one is there; the inactive global
    // one, the other account's and the refused one are not. (Other global habits in the shared
    // test database are exported too, as they should be.)
    expect(file.prepare('select lower(hex(uuid)) from habits where account_logical_id is not null').pluck().all()).toEqual([f.habits.mine]);
    expect(uuids.has(f.habits.mine)).toBe(true);
    for (const absent of [f.habits.globalInactive, f.habits.other, f.habits.badPixel]) expect(uuids.has(absent)).toBe(false);
    expect(file.prepare('select count(*) from habit_pixels where lower(hex(habit_uuid)) = ?').pluck().get(f.habits.mine)).toBe(2);
    file.close();
    // Its logs reach the write side, under its device.
    const logged = await fetch(`http://${replica.service.legacyHttpAddress}/daemon/logs/bulk`, {
      method: 'POST',
      headers: { 'X-API-KEY': f.token },
      body: JSON.stringify({ log_dto_list: [{ message: `${f.token.slice(-12)} started` }, { message: `${f.token.slice(-12)} synced` }] }),
    });
    expect(logged.status).toBe(201);
    const lines = await call(logs, logs.listLogs, ListLogsRequest.fromPartial({ deviceUuid: canonical(f.devices[0]!), pageSize: 10 }), sys.write.adminToken);
    expect(lines.logEntries.map((e) => e.line)).toEqual([`${f.token.slice(-12)} started`, `${f.token.slice(-12)} synced`]);
    // Another device's scope stays closed to this token; an unknown token gets the original's 401.
    expect((await http(`/daemon/db?logical_id=${uniqueInt()}`)).status).toBe(403);
    const unknown = await http('/daemon/devices', { 'X-API-KEY': 'not imported' });
    expect(unknown.status).toBe(401);
    expect(await unknown.text()).toBe('');
  });
});
