import { randomUUID } from 'node:crypto';
import { Client, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { ActivityType, DaemonServiceService, Gender, type DaemonServiceClient } from '@titanbot/contracts/titanbot/daemon/v1/daemon_service';
import { generateDaemonToken } from '@titanbot/service-kit/daemon-token';
import { nextEmpireTime, utcDay } from '@titanbot/service-kit/empire-time';
import { POLICY } from '@titanbot/service-kit/policy';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { call, failure, uniqueInt, withKey } from '@titanbot/write/test-support/harness';
import { TestClock } from '@titanbot/write/test-support/test-clock';
import { adminApi, provisionDevice, uniquePixel } from './support/admin.js';
import { checkVersion, download } from './support/daemon.js';
import { moreAdminApi, watch } from './support/more.js';
import { startSystem, type Replica, type System } from './support/system.js';

const SETTINGS = {
  SSH_SERVER_NAME: 'tunnel.example.test',
  SSH_SERVER_IP: '10.20.30.40',
  SSH_SERVER_COMMON_PORT: '2222',
  BACKEND_PUBLIC_KEY: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIbackend backend@titanbot',
  FORWARD_TIMEOUT: '1s',
  // These tests present many bad keys from one address on a clock that stands still: the
  // throttle of failed keys (test/hostile-daemon.test.ts) is lifted here.
  AUTH_FAILURES_BURST: '1000000',
};

let sys: System;
/** The replica's clock: expiry is reached by moving it, not by sleeping. */
const clock = new TestClock();
let replica: Replica;
let daemon: DaemonServiceClient;
let api: ReturnType<typeof adminApi>;
let more: ReturnType<typeof moreAdminApi>;
let fleet: Awaited<ReturnType<typeof provisionDevice>>;
/** Another device with its own account: what `fleet` must never see. */
let stranger: Awaited<ReturnType<typeof provisionDevice>>;

beforeAll(async () => {
  sys = await startSystem();
  api = adminApi(sys.write);
  more = moreAdminApi(sys.write);
  fleet = await provisionDevice(api);
  stranger = await provisionDevice(api);
  replica = await sys.startReplica(SETTINGS, undefined, clock);
  await replica.service.consumer.caughtUp;
  await replica.synced();
  daemon = replica.daemon();
});
afterAll(async () => {
  await sys?.stop();
});

/** Every DaemonService method with an empty request: resolves on success (first message of a stream). */
function rawCall(client: Client, method: { path: string; responseStream: boolean }, key: string | undefined): Promise<void> {
  const same = (b: Buffer): Buffer => b;
  return new Promise((resolve, reject) => {
    if (!method.responseStream) {
      client.makeUnaryRequest(method.path, same, same, Buffer.alloc(0), withKey(key), (err: ServiceError | null) => (err ? reject(err) : resolve()));
      return;
    }
    const stream = client.makeServerStreamRequest(method.path, same, same, Buffer.alloc(0), withKey(key));
    stream.on('data', () => {
      stream.cancel();
      resolve();
    });
    stream.on('error', reject);
    stream.on('end', resolve);
  });
}

describe('DaemonService authentication and authorization', () => {
  it('answers UNAUTHENTICATED to every method without a usable daemon token', async () => {
    const expiring = await api.issueToken(fleet.device.uuid, 1);
    const revoked = await api.issueToken(fleet.device.uuid);
    await replica.synced();
    // Both worked before they expired / were revoked.
    expect((await call(daemon, daemon.getToken, {}, expiring.token)).uuid).toBe(expiring.daemonToken!.uuid);
    expect((await call(daemon, daemon.getToken, {}, revoked.token)).uuid).toBe(revoked.daemonToken!.uuid);
    await api.revokeToken(revoked.daemonToken!.uuid);
    await replica.synced();
    clock.advance(1_500); // past the 1 s token's expiry

    // A token-shaped key whose checksum is wrong.
    const good = generateDaemonToken();
    const malformed = `${good.slice(0, -1)}${good.endsWith('x') ? 'y' : 'x'}`;
    const credentialsToTry: [string, string | undefined][] = [
      ['no key', undefined],
      ['malformed', malformed],
      ['garbage', 'not-a-token'],
      ['unknown', generateDaemonToken()],
      ['expired', expiring.token],
      ['revoked', revoked.token],
      ['admin token', sys.write.adminToken],
      ['reader token', sys.write.readerToken],
    ];
    const client = new Client(replica.service.address, credentials.createInsecure());
    try {
      // Every read-service RPC, from the policy table: all of them are for daemon tokens only.
      const served = POLICY.filter((p) => p.server === 'read');
      expect(served.map((p) => p.principal)).toEqual(['daemon']);
      const methods = served.flatMap((p) => Object.values(p.service));
      expect(methods).toHaveLength(13);
      for (const method of methods) {
        for (const [what, key] of credentialsToTry) {
          const err = await failure(rawCall(client, method, key));
          expect([err.code, err.reason], `${method.path} with ${what}`).toEqual([status.UNAUTHENTICATED, 'UNAUTHENTICATED']);
        }
      }
      // The same calls with a good token get past authentication.
      await rawCall(client, DaemonServiceService.getToken, fleet.token);
      await rawCall(client, DaemonServiceService.watchVersion, fleet.token);
    } finally {
      client.close();
    }
  });

  it("answers PERMISSION_DENIED for another device's account scope", async () => {
    const attempts: [string, Promise<unknown>][] = [
      ['CheckVersion', checkVersion(daemon, fleet.token, stranger.logicalId)],
      ['DownloadExport', download(daemon, fleet.token, { logicalId: stranger.logicalId })],
      [
        'WatchVersion',
        (async () => {
          const w = watch(daemon, fleet.token, stranger.logicalId, '');
          const err = await w.error;
          if (err) throw err;
        })(),
      ],
    ];
    for (const [name, attempt] of attempts) {
      const denied = await failure(attempt);
      expect([denied.code, denied.reason], name).toEqual([status.PERMISSION_DENIED, 'SCOPE_NOT_OF_DEVICE']);
    }
    // The stranger itself may read its scope.
    expect((await checkVersion(daemon, stranger.token, stranger.logicalId)).version).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('DaemonService reads of the device and its accounts', () => {
  it('GetDevice returns the token\'s device with its accounts ascending and the current one', async () => {
    const [low, high] = [uniqueInt(), uniqueInt()].sort((a, b) => a - b) as [number, number];
    const device = await api.createDevice();
    const second = await api.createAccount(high);
    const first = await api.createAccount(low);
    // Bound high first, low last: the order of the answer is by logical id, the current one the last bound.
    await api.bind(device.uuid, second.logicalId);
    await api.bind(device.uuid, first.logicalId);
    await more.updateDevice({ uuid: device.uuid, isActive: true, isNeedToUpdate: true, activityType: 2, isAbleToClearCache: true, goTimeLimitSeconds: 42 }, [
      'is_active',
      'is_need_to_update',
      'activity_type',
      'is_able_to_clear_cache',
      'go_time_limit_seconds',
    ]);
    const token = (await api.issueToken(device.uuid)).token;
    await replica.synced();
    const got = await call(daemon, daemon.getDevice, {}, token);
    expect(got).toEqual({
      uuid: device.uuid,
      physicalId: device.physicalId,
      isActive: true,
      isSsh: false,
      isNeedToUpdate: true,
      activityType: ActivityType.ACTIVITY_TYPE_AJAGPLAY,
      isFullServerDetection: false,
      isAbleToClearCache: true,
      goTimeLimitSeconds: 42,
      currentAccountLogicalId: low,
      accountLogicalIds: [low, high],
    });
    const { etag: _etag, ...admin } = await more.getDevice(device.uuid);
    expect(got).toEqual(admin);

    // Another device's call sees its own device only.
    expect((await call(daemon, daemon.getDevice, {}, fleet.token)).uuid).toBe(fleet.device.uuid);
  });

  it('GetSsh returns the key pair the admin API shows and the configured server settings', async () => {
    const ssh = await call(daemon, daemon.getSsh, {}, fleet.token);
    const admin = await more.getDeviceSsh(fleet.device.uuid);
    expect(ssh).toEqual({
      publicKey: admin.publicKey,
      privateKey: admin.privateKey,
      serverDeviceInternalPort: admin.serverDeviceInternalPort,
      serverName: 'tunnel.example.test',
      serverIp: '10.20.30.40',
      serverCommonPort: 2222,
    });
    expect(ssh.publicKey).toMatch(/^ssh-ed25519 /);
    expect(ssh.privateKey).toContain('OPENSSH PRIVATE KEY');
    expect((await call(daemon, daemon.getSsh, {}, stranger.token)).publicKey).toBe((await more.getDeviceSsh(stranger.device.uuid)).publicKey);
  });

  it('ListAccounts returns only the device\'s accounts, with their Google passwords, by logical id', async () => {
    const device = await api.createDevice();
    const legion = await more.createLegion({ title: 'Listed' });
    const a = await api.createAccount(uniqueInt(), 'secret-a');
    const b = await api.createAccount(uniqueInt(), 'secret-b');
    await more.updateAccount({ uuid: b.uuid, legionUuid: legion.uuid, isEmpireSleeping: true }, ['legion_uuid', 'is_empire_sleeping']);
    await api.bind(device.uuid, a.logicalId);
    await api.bind(device.uuid, b.logicalId);
    const token = (await api.issueToken(device.uuid)).token;
    await replica.synced();
    const got = await call(daemon, daemon.listAccounts, {}, token);
    const expected = await Promise.all(
      [a, b]
        .sort((x, y) => x.logicalId - y.logicalId)
        .map(async (x) => {
          const { etag: _etag, ...account } = await more.getAccount(x.uuid);
          return account;
        }),
    );
    expect(got.accounts).toEqual(expected);
    expect(got.accounts.map((x) => x.googlePassword).sort()).toEqual(['secret-a', 'secret-b']);
    expect(got.accounts.find((x) => x.uuid === b.uuid)).toMatchObject({ legionUuid: legion.uuid, isEmpireSleeping: true, gender: Gender.GENDER_FEMALE });
    expect(got.accounts.find((x) => x.uuid === a.uuid)?.legionUuid).toBeUndefined();
    expect(got.accounts.find((x) => x.uuid === a.uuid)?.birthDate).toEqual(new Date('1990-05-17T00:00:00Z'));
    // The stranger's account is not among them; the stranger sees only its own.
    expect((await call(daemon, daemon.listAccounts, {}, stranger.token)).accounts.map((x) => x.uuid)).toEqual([stranger.account.uuid]);
  });

  it('GetLegion answers for a legion of the device\'s accounts only', async () => {
    const own = await more.createLegion({ title: 'Own', extTitle: 'The own legion', payDayOfMonth: 28 });
    const foreign = await more.createLegion({ title: 'Foreign' });
    await more.updateAccount({ uuid: fleet.account.uuid, legionUuid: own.uuid }, ['legion_uuid']);
    await more.updateAccount({ uuid: stranger.account.uuid, legionUuid: foreign.uuid }, ['legion_uuid']);
    await replica.synced();
    expect(await call(daemon, daemon.getLegion, { uuid: own.uuid }, fleet.token)).toEqual({ uuid: own.uuid, title: 'Own', extTitle: 'The own legion', payDayOfMonth: 28 });
    expect(await call(daemon, daemon.getLegion, { uuid: own.uuid.toUpperCase() }, fleet.token)).toMatchObject({ uuid: own.uuid });
    expect(await call(daemon, daemon.getLegion, { uuid: foreign.uuid }, stranger.token)).toEqual({ uuid: foreign.uuid, title: 'Foreign', extTitle: undefined, payDayOfMonth: undefined });

    const denied = await failure(call(daemon, daemon.getLegion, { uuid: foreign.uuid }, fleet.token));
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    const missing = await failure(call(daemon, daemon.getLegion, { uuid: randomUUID() }, fleet.token));
    expect(missing.code).toBe(status.NOT_FOUND);
    for (const bad of ['not-a-uuid', '']) {
      const invalid = await failure(call(daemon, daemon.getLegion, { uuid: bad }, fleet.token));
      expect([invalid.code, invalid.fields], bad).toEqual([status.INVALID_ARGUMENT, ['uuid']]);
    }
  });

  it('GetNextEmpireDate applies the Monday 03:00 UTC rule to the first date after today', async () => {
    const day = (offset: number): string => utcDay(new Date(Date.now() + offset * 86_400_000));
    const created: string[] = [];
    for (const d of [day(-7), day(7), day(14)]) {
      try {
        created.push((await more.createEmpireDate(d)).uuid);
      } catch (err) {
        if ((err as ServiceError).code !== status.ALREADY_EXISTS) throw err;
      }
    }
    const expectedNow = async (): Promise<Date | undefined> => {
      await replica.synced();
      const dates = (await sys.db.query("select to_char(date, 'YYYY-MM-DD') as d from empire_dates")).rows.map((r: { d: string }) => r.d);
      return nextEmpireTime(dates, new Date()) ?? undefined;
    };
    const expected = await expectedNow();
    expect(expected).toBeDefined();
    expect(expected!.getUTCDay()).toBe(1);
    expect(expected!.getUTCHours()).toBe(3);
    const got = await call(daemon, daemon.getNextEmpireDate, {}, fleet.token);
    expect(got.nextTime).toEqual(expected);

    // Deleting one of our future dates moves the answer (or leaves it, when another date rules).
    if (created.length > 1) {
      await more.deleteEmpireDate(created[1]!);
      const next = await expectedNow();
      expect((await call(daemon, daemon.getNextEmpireDate, {}, fleet.token)).nextTime).toEqual(next);
    }
  });

  it('GetBackendPublicKey returns the configured key', async () => {
    expect(await call(daemon, daemon.getBackendPublicKey, {}, fleet.token)).toEqual({ publicKey: SETTINGS.BACKEND_PUBLIC_KEY });
    expect(await call(daemon, daemon.getBackendPublicKey, {}, stranger.token)).toEqual({ publicKey: SETTINGS.BACKEND_PUBLIC_KEY });
  });

  it('GetToken describes the presented token as it was issued', async () => {
    const issued = await api.issueToken(fleet.device.uuid, 7200);
    await replica.synced();
    const got = await call(daemon, daemon.getToken, {}, issued.token);
    expect(got).toEqual({
      uuid: issued.daemonToken!.uuid,
      deviceUuid: fleet.device.uuid,
      prefix: issued.token.slice(0, 10),
      createTime: issued.daemonToken!.createTime,
      expireTime: issued.daemonToken!.expireTime,
    });
    expect(got.expireTime!.getTime() - got.createTime!.getTime()).toBe(7200_000);
    expect(got.prefix).toBe(issued.daemonToken!.prefix);
  });
});

describe('WatchVersion', () => {
  it('sends only changes of the watched scope, global changes to every watcher, and ends on cancel', async () => {
    const baseline = replica.service.model.versions.listenerCount;
    const current = (await checkVersion(daemon, fleet.token, fleet.logicalId)).version;
    const quiet = watch(daemon, fleet.token, fleet.logicalId, current);
    await vi.waitFor(() => expect(replica.service.model.versions.listenerCount).toBe(baseline + 1));

    // Another account's habit, then one in the scope: the stream is ordered, so its first message
    // being the second change's version shows the first sent nothing.
    await api.createHabit({ accountLogicalId: stranger.logicalId, action: 'elsewhere', pixels: [uniquePixel()] });
    await replica.synced();
    await api.createHabit({ accountLogicalId: fleet.logicalId, action: 'here' });
    await replica.synced();
    const [changed] = await quiet.next(1);
    expect(changed).toBe((await checkVersion(daemon, fleet.token, fleet.logicalId)).version);
    expect(changed).not.toBe(current);

    // A stale known version: the current one at once.
    const stale = watch(daemon, fleet.token, fleet.logicalId, current);
    expect(await stale.next(1)).toEqual([changed]);
    const globalNow = (await checkVersion(daemon, fleet.token, undefined)).version;
    const global = watch(daemon, fleet.token, undefined, globalNow);
    await vi.waitFor(() => expect(replica.service.model.versions.listenerCount).toBe(baseline + 3));

    // A global habit reaches the account scope's watchers and the global scope's watcher, each
    // exactly once after `changed` (no repeat of it in between).
    await api.createHabit({ action: 'for everyone' });
    await replica.synced();
    const scoped = (await checkVersion(daemon, fleet.token, fleet.logicalId)).version;
    const globalAfter = (await checkVersion(daemon, fleet.token, undefined)).version;
    expect(globalAfter).not.toBe(globalNow);
    expect(await quiet.next(2)).toEqual([changed, scoped]);
    expect(await stale.next(2)).toEqual([changed, scoped]);
    expect(await global.next(1)).toEqual([globalAfter]);

    for (const w of [quiet, stale, global]) w.cancel();
    for (const w of [quiet, stale, global]) expect((await w.error)?.code).toBe(status.CANCELLED);
    await vi.waitFor(() => expect(replica.service.model.versions.listenerCount).toBe(baseline));
  });
});

describe('calls forwarded to the write service', () => {
  it('WriteLogs stores the lines in order, once per request_id', async () => {
    const marker = randomUUID();
    const t0 = Date.now();
    const lines = ['first', 'second', 'third'].map((l, i) => ({ line: `${marker} ${l}`, logTime: new Date(t0 + i) }));
    const requestId = randomUUID();
    expect(await call(daemon, daemon.writeLogs, { lines, requestId }, fleet.token)).toEqual({ acceptedCount: 3 });
    const stored = async () => (await more.listLogs(fleet.device.uuid)).logEntries.filter((e) => e.line.startsWith(marker));
    expect((await stored()).map((e) => [e.line, e.deviceUuid, e.logTime])).toEqual(lines.map((l) => [l.line, fleet.device.uuid, l.logTime]));
    // A retry with the same request_id stores nothing twice.
    expect(await call(daemon, daemon.writeLogs, { lines, requestId }, fleet.token)).toEqual({ acceptedCount: 3 });
    expect((await stored()).map((e) => e.line)).toEqual(lines.map((l) => l.line));
    // The lines belong to the token's device only.
    expect((await more.listLogs(stranger.device.uuid)).logEntries.filter((e) => e.line.startsWith(marker))).toEqual([]);
  });

  it('RotateToken returns a working successor with the original lifetime; the old token keeps a grace', async () => {
    const device = await api.createDevice();
    const issued = await api.issueToken(device.uuid, 3600);
    await replica.synced();
    const rotated = await call(daemon, daemon.rotateToken, {}, issued.token);
    expect(rotated.token).not.toBe(issued.token);
    const info = rotated.tokenInfo!;
    expect(info).toMatchObject({ deviceUuid: device.uuid, prefix: rotated.token.slice(0, 10) });
    expect(info.expireTime!.getTime() - info.createTime!.getTime()).toBe(3600_000);
    // Usable on this replica at once, without waiting for a sync.
    expect(await call(daemon, daemon.getToken, {}, rotated.token)).toEqual(info);
    // The old one still works, until the end of its grace.
    await replica.synced();
    const old = await call(daemon, daemon.getToken, {}, issued.token);
    expect(old.uuid).toBe(issued.daemonToken!.uuid);
    expect(old.expireTime).toEqual(rotated.previousExpireTime);
    expect(rotated.previousExpireTime!.getTime()).toBeLessThanOrEqual(issued.daemonToken!.expireTime!.getTime());
    expect(rotated.previousExpireTime!.getTime()).toBeGreaterThan(Date.now());
    // A token rotates once.
    const again = await failure(call(daemon, daemon.rotateToken, {}, issued.token));
    expect(again.code).toBe(status.UNAUTHENTICATED);
    expect((await call(daemon, daemon.getDevice, {}, rotated.token)).uuid).toBe(device.uuid);
  });

  it('with the write service down, WriteLogs and RotateToken fail with UNAVAILABLE WRITE_SERVICE_UNAVAILABLE while reads still answer', async () => {
    const other = await startSystem();
    const otherApi = adminApi(other.write);
    const device = await provisionDevice(otherApi);
    const lonely = await other.startReplica({ FORWARD_TIMEOUT: '1s' });
    try {
      await lonely.service.consumer.caughtUp;
      await lonely.synced();
      const client = lonely.daemon();
      const version = (await checkVersion(client, device.token, device.logicalId)).version;
      await other.write.stop();

      for (const [name, attempt] of [
        ['WriteLogs', () => call(client, client.writeLogs, { lines: [{ line: 'lost?', logTime: new Date() }], requestId: randomUUID() }, device.token)],
        ['RotateToken', () => call(client, client.rotateToken, {}, device.token)],
      ] as const) {
        const err = await failure(attempt());
        expect([err.code, err.reason], name).toEqual([status.UNAVAILABLE, 'WRITE_SERVICE_UNAVAILABLE']);
      }
      expect(await checkVersion(client, device.token, device.logicalId, version)).toEqual({ version, changed: false });
      expect((await call(client, client.getDevice, {}, device.token)).uuid).toBe(device.device.uuid);
    } finally {
      await lonely.stop();
      await other.db.end();
    }
  });

  it('refuses a token with UNAUTHENTICATED once its revocation reaches the replica, and only that token', async () => {
    const issued = await api.issueToken(fleet.device.uuid);
    await replica.synced();
    expect((await call(daemon, daemon.getToken, {}, issued.token)).uuid).toBe(issued.daemonToken!.uuid);
    await api.revokeToken(issued.daemonToken!.uuid);
    await replica.synced();
    const refused = await failure(call(daemon, daemon.getToken, {}, issued.token));
    expect([refused.code, refused.reason]).toEqual([status.UNAUTHENTICATED, 'UNAUTHENTICATED']);
    // Other tokens of the device are untouched.
    expect((await call(daemon, daemon.getToken, {}, fleet.token)).uuid).toBe(fleet.tokenUuid);
  });
});
