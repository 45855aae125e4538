/**
 * The original system's daemon HTTP API (docs/legacy.md) served by a real replica on
 * LEGACY_HTTP_ADDR: a scripted daemon of that system follows its flow over HTTP/1.1 and gets the
 * original's status codes, JSON shapes and headers, from the same read model and export cache as
 * the gRPC API; least privilege holds (a token sees its own device only).
 */
import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { DaemonTokenServiceClient, ImportLegacyDaemonTokenRequest, ListDaemonTokensRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, failure, uniqueInt } from '@titanbot/write/test-support/harness';
import { TestClock } from '@titanbot/write/test-support/test-clock';
import { adminApi, provisionDevice, uniquePixel, uniqueShape } from './support/admin.js';
import { checkVersion, download } from './support/daemon.js';
import { moreAdminApi } from './support/more.js';
import { startSystem, type Replica, type System } from './support/system.js';

const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBackendKeyForLegacyTests backend';
let sys: System;
let replica: Replica;
let api: ReturnType<typeof adminApi>;
let more: ReturnType<typeof moreAdminApi>;
let fleet: Awaited<ReturnType<typeof provisionDevice>>;
let stranger: Awaited<ReturnType<typeof provisionDevice>>;
let base: string;
let daemon: DaemonServiceClient;

beforeAll(async () => {
  sys = await startSystem();
  api = adminApi(sys.write);
  more = moreAdminApi(sys.write);
  fleet = await provisionDevice(api);
  stranger = await provisionDevice(api);
  // Many bad keys from one address: the throttle of failed keys (test/hostile-daemon.test.ts) is lifted.
  replica = await sys.startReplica({ LEGACY_HTTP_ADDR: '127.0.0.1:0', BACKEND_PUBLIC_KEY: PUBLIC_KEY, AUTH_FAILURES_BURST: '1000000' });
  await replica.synced();
  base = `http://${replica.service.legacyHttpAddress}`;
  daemon = replica.daemon();
});
afterAll(async () => {
  await sys?.stop();
});

/** A request as a daemon of the original sends it: `X-API-KEY` with its token. */
const http = (path: string, init: { method?: string; body?: string; token?: string | null; headers?: Record<string, string> } = {}) =>
  fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers: { ...(init.token === null ? {} : { 'X-API-KEY': init.token ?? fleet.token }), ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  });

async function jsonOf(res: Response, statusCode = 200): Promise<any> {
  expect(res.status).toBe(statusCode);
  expect(res.headers.get('content-type')).toBe('application/json');
  return JSON.parse(await res.text());
}

async function problemOf(res: Response, statusCode: number): Promise<Record<string, unknown>> {
  expect(res.status).toBe(statusCode);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const text = await res.text();
  // Pretty-printed with 4 spaces; `errors` (when present) first, then title, type, status, detail.
  expect(text).toMatch(/^\{\n {4}"/);
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(Object.keys(body).filter((k) => k !== 'errors')).toEqual(['title', 'type', 'status', 'detail']);
  expect(body.status).toBe(statusCode);
  return body;
}

describe('the original daemon HTTP API', () => {
  it('serves a legacy daemon its flow: device, accounts, SSH, legion, empire date, public key, checksum, database, logs', async () => {
    const legion = await more.createLegion({ title: 'Iron', payDayOfMonth: 5 });
    await more.updateAccount({ uuid: fleet.account.uuid, legionUuid: legion.uuid }, ['legion_uuid']);
    await api.createHabit({ accountLogicalId: fleet.logicalId, priority: 3, action: 'tap', pixels: [uniquePixel()], shapes: [uniqueShape()] });
    await replica.synced();

    // 1. Its own device, by physical id: a map keyed by uuid, keys in the original's order.
    const devices = await jsonOf(await http(`/daemon/devices?physical_id=${fleet.device.physicalId}`));
    expect(Object.keys(devices.uuid_to_device_map)).toEqual([fleet.device.uuid]);
    const device = devices.uuid_to_device_map[fleet.device.uuid];
    expect(Object.keys(device)).toEqual([
      'uuid', 'physical_id', 'is_active', 'is_ssh', 'is_need_to_update', 'activity_type', 'is_full_server_detection', 'is_able_to_clear_cache', 'go_time_limit_seconds', 'current_logical_id',
    ]);
    expect(device).toMatchObject({ uuid: fleet.device.uuid, physical_id: fleet.device.physicalId, activity_type: 'rowgplay', go_time_limit_seconds: 100, current_logical_id: fleet.logicalId });
    // Another physical id, or another device's: the empty map, rendered `[]` as PHP did.
    expect(await (await http(`/daemon/devices?physical_id=${stranger.device.physicalId}`)).text()).toBe('{"uuid_to_device_map":[]}');
    expect(Object.keys((await jsonOf(await http('/daemon/devices'))).uuid_to_device_map)).toEqual([fleet.device.uuid]);

    // 2. The current account, with its password, for this device only.
    const accounts = await jsonOf(await http(`/daemon/accounts?logical_id=${fleet.logicalId}`));
    expect(accounts.uuid_to_account_map[fleet.account.uuid]).toEqual({
      uuid: fleet.account.uuid, logical_id: fleet.logicalId, first_name: 'Ann', last_name: 'Lee', birth_date: '1990-05-17T00:00:00+00:00', gender: 'female',
      google_login: `a${fleet.logicalId}@example.com`, google_password: 'pw-secret', is_empire_sleeping: false,
    });
    expect(await (await http(`/daemon/accounts?logical_id=${stranger.logicalId}`)).text()).toBe('{"uuid_to_account_map":[]}');

    // 3. SSH key pair and port of its own device; another device's is not found; a bad uuid is 422.
    const ssh = (await jsonOf(await http(`/daemon/devices/${fleet.device.uuid.toUpperCase()}/ssh`))).ssh;
    expect(Object.keys(ssh)).toEqual(['uuid', 'physical_id', 'public', 'private', 'server_device_internal_port', 'server_name', 'server_ip', 'server_common_port']);
    expect(ssh).toMatchObject({ physical_id: fleet.device.physicalId, server_name: 'titanbot', server_ip: '127.0.0.1', server_common_port: 22 });
    expect(ssh.private).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    await problemOf(await http(`/daemon/devices/${stranger.device.uuid}/ssh`), 404);
    expect((await problemOf(await http('/daemon/devices/not-a-uuid/ssh'), 422)).detail).toBe('Invalid UUID string: not-a-uuid');

    // 4. Its account's legion; another legion is not found.
    expect(await jsonOf(await http(`/daemon/legions/${legion.uuid}`))).toEqual({ legion: { uuid: legion.uuid, title: 'Iron', ext_title: null, pay_day_of_month: 5 } });
    const foreign = await more.createLegion({ title: 'Elsewhere' });
    await replica.synced();
    await problemOf(await http(`/daemon/legions/${foreign.uuid}`), 404);

    // 5. Next empire limit as unix seconds, the same instant the gRPC API gives; the public key.
    const next = await call(daemon, daemon.getNextEmpireDate, {}, fleet.token);
    expect(await jsonOf(await http('/daemon/empire-dates-next'))).toEqual({ unix_timestamp: next.nextTime ? next.nextTime.getTime() / 1000 : null });
    expect(await jsonOf(await http('/daemon/backend/public-key'))).toEqual({ public_key: PUBLIC_KEY });

    // 6. The checksum is the scope's version: it changes exactly when the file does.
    const before = (await jsonOf(await http(`/daemon/db/checksum?logical_id=${fleet.logicalId}`))).checksum;
    expect(before).toBe((await checkVersion(daemon, fleet.token, fleet.logicalId)).version);
    await api.createHabit({ accountLogicalId: stranger.logicalId, action: 'not ours' });
    await replica.synced();
    expect((await jsonOf(await http(`/daemon/db/checksum?logical_id=${fleet.logicalId}`))).checksum).toBe(before);
    await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'ours', pixels: [uniquePixel()] });
    await replica.synced();
    expect((await jsonOf(await http(`/daemon/db/checksum?logical_id=${fleet.logicalId}`))).checksum).not.toBe(before);

    // 7. The database: the same bytes as the gRPC download, with the original's headers.
    const full = await http(`/daemon/db?logical_id=${fleet.logicalId}`);
    expect(full.status).toBe(200);
    expect(full.headers.get('content-type')).toBe('application/vnd.sqlite3');
    expect(full.headers.get('content-disposition')).toBe('attachment; filename=titanbotd.sqlite');
    expect(full.headers.get('accept-ranges')).toBe('bytes');
    expect(full.headers.get('cache-control')).toBe('public');
    expect(full.headers.get('last-modified')).toBeTruthy();
    const bytes = Buffer.from(await full.arrayBuffer());
    expect(Number(full.headers.get('content-length'))).toBe(bytes.length);
    expect(bytes.equals((await download(daemon, fleet.token, { logicalId: fleet.logicalId })).bytes)).toBe(true);
    const file = new Database(bytes);
    expect(file.prepare('select action from habits order by rowid').pluck().all()).toEqual(expect.arrayContaining(['tap', 'ours']));
    expect(file.prepare("select count(*) from habits where action = 'not ours'").pluck().get()).toBe(0);
    file.close();
    // With Range: 206 and the exact slice; a suffix; past the end is 416.
    const part = await http(`/daemon/db?logical_id=${fleet.logicalId}`, { headers: { Range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200))).toBe(true);
    const tail = await http(`/daemon/db?logical_id=${fleet.logicalId}`, { headers: { Range: 'bytes=-50' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 50))).toBe(true);
    const past = await http(`/daemon/db?logical_id=${fleet.logicalId}`, { headers: { Range: `bytes=${bytes.length + 10}-${bytes.length + 20}` } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
    // Another device's scope is not this token's to read.
    expect((await problemOf(await http(`/daemon/db?logical_id=${stranger.logicalId}`), 403)).detail).toBe('Access Denied.');
    await problemOf(await http(`/daemon/db/checksum?logical_id=${stranger.logicalId}`), 403);

    // 8. Logs: 201 with `[]`, stored in order for this device.
    const marker = `legacy-${uniqueInt()}`;
    const one = await http('/daemon/logs', { method: 'POST', body: JSON.stringify({ message: `${marker} one` }) });
    expect(one.status).toBe(201);
    expect(await one.text()).toBe('[]');
    const bulk = await http('/daemon/logs/bulk', { method: 'POST', body: JSON.stringify({ log_dto_list: [{ message: `${marker} two` }, { message: `${marker} three` }] }) });
    expect(bulk.status).toBe(201);
    const stored = (await more.listLogs(fleet.device.uuid)).logEntries.map((e: { line: string }) => e.line).filter((l: string) => l.startsWith(marker));
    expect(stored).toEqual([`${marker} one`, `${marker} two`, `${marker} three`]);
  });

  it('answers as the original: 401 with an empty body, 403 for admin routes, 404/405 before the key, 400/422 for bad bodies', async () => {
    for (const token of [null, '', 'not-a-token', 'tbd_0000000000000000000000000000000000000000000']) {
      const res = await http('/daemon/devices', { token });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
      expect(await res.text()).toBe('');
    }
    // A revoked token is refused from the moment its revocation reaches the replica.
    const issued = await api.issueToken(fleet.device.uuid);
    await replica.synced();
    expect((await http('/daemon/devices', { token: issued.token })).status).toBe(200);
    await api.revokeToken(issued.daemonToken!.uuid);
    await replica.synced();
    expect((await http('/daemon/devices', { token: issued.token })).status).toBe(401);

    for (const [method, path] of [['GET', '/daemon/habits'], ['POST', '/daemon/devices'], ['GET', '/daemon/tokens'], ['GET', '/daemon/logs'], ['HEAD', '/daemon/db']] as const) {
      const res = await http(path, { method, ...(method === 'POST' ? { body: '[]' } : {}) });
      expect(res.status, `${method} ${path}`).toBe(403);
      if (method !== 'HEAD') expect((await problemOf(res, 403)).detail).toBe('Access Denied.');
    }
    expect((await problemOf(await http('/daemon/nothing-here', { token: null }), 404)).detail).toBe('No route found for "GET /daemon/nothing-here"');
    expect((await problemOf(await http('/daemon/db', { method: 'DELETE', token: null }), 405)).detail).toMatch(/Method Not Allowed \(Allow: GET\)$/);

    expect((await problemOf(await http('/daemon/logs', { method: 'POST', body: '' }), 400)).detail).toBe('Request body is empty.');
    expect((await problemOf(await http('/daemon/logs', { method: 'POST', body: '{"message":' }), 400)).detail).toBe('Could not decode request body.');
    const wrongType = await problemOf(await http('/daemon/logs', { method: 'POST', body: '{"message": 5}' }), 422);
    expect(Object.keys(wrongType)[0]).toBe('errors');
    expect(wrongType.errors).toEqual({ message: ['This value should be of type string.'] });
    await problemOf(await http('/daemon/logs/bulk', { method: 'POST', body: '{"log_dto_list": null}' }), 422);
  });

  it("takes the original's tokens once imported: hash only, bound to one device, refused on the gRPC API, revocable, expiring", async () => {
    const tokens = sys.write.client(DaemonTokenServiceClient);
    const importToken = (token: string, deviceUuid: string, expireTime?: Date) =>
      call(tokens, tokens.importLegacyDaemonToken, ImportLegacyDaemonTokenRequest.fromPartial({ deviceUuid, token, expireTime }), sys.write.adminToken);
    const plaintext = `Original token ${uniqueInt()} from daemon_tokens`;
    const imported = await importToken(plaintext, fleet.device.uuid);
    expect(imported).toMatchObject({ deviceUuid: fleet.device.uuid, prefix: 'legacy', legacy: true, expireTime: undefined });
    // Only the SHA-256 is stored; importing the same token again is ALREADY_EXISTS (a re-run import skips it).
    const stored = await sys.db.query('select token_hash, kind from daemon_tokens where uuid = $1', [imported.uuid]);
    expect(stored.rows).toEqual([{ token_hash: createHash('sha256').update(plaintext).digest('hex'), kind: 'legacy' }]);
    expect((await failure(importToken(plaintext, fleet.device.uuid))).code).toBe(status.ALREADY_EXISTS);
    const listed = await call(tokens, tokens.listDaemonTokens, ListDaemonTokensRequest.fromPartial({ deviceUuid: fleet.device.uuid, legacy: true }), sys.write.adminToken);
    expect(listed.daemonTokens.map((t) => t.uuid)).toEqual([imported.uuid]);
    await replica.synced();

    // The legacy API takes it, for its own device only; the gRPC API does not know it.
    const devices = await jsonOf(await http('/daemon/devices', { token: plaintext }));
    expect(Object.keys(devices.uuid_to_device_map)).toEqual([fleet.device.uuid]);
    await problemOf(await http(`/daemon/db?logical_id=${stranger.logicalId}`, { token: plaintext }), 403);
    expect((await failure(checkVersion(daemon, plaintext, fleet.logicalId))).code).toBe(status.UNAUTHENTICATED);

    await call(tokens, tokens.revokeDaemonToken, { uuid: imported.uuid }, sys.write.adminToken);
    await replica.synced();
    expect((await http('/daemon/devices', { token: plaintext })).status).toBe(401);

    // An expiry, when the operator gives one, holds on the replica's clock.
    const clock = new TestClock();
    const timed = await sys.startReplica({ LEGACY_HTTP_ADDR: '127.0.0.1:0' }, undefined, clock);
    try {
      const expiring = `Expiring original token ${uniqueInt()}`;
      await importToken(expiring, fleet.device.uuid, new Date(clock.now() + 3_600_000));
      await timed.synced();
      const at = (path: string) => fetch(`http://${timed.service.legacyHttpAddress}${path}`, { headers: { 'X-API-KEY': expiring } });
      expect((await at('/daemon/backend/public-key')).status).toBe(200);
      clock.advance(3_600_000);
      expect((await at('/daemon/backend/public-key')).status).toBe(401);
    } finally {
      await timed.stop();
    }
  });
});
