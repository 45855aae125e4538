import { Client, credentials, status, type MethodDefinition } from '@grpc/grpc-js';
import { CreateAccountRequest, AccountServiceClient, Gender } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { DaemonTokenServiceClient, IssueDaemonTokenRequest } from '@titanbot/contracts/titanbot/admin/v1/daemon_token_service';
import { BindAccountRequest, CreateDeviceRequest, DeviceServiceClient } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY, type PrincipalKind } from '@titanbot/service-kit/policy';
import { call, failure, startHarness, uniqueInt, withKey, type Harness } from './support/harness.js';
import { TestClock } from './support/test-clock.js';

const AUTH_CODES = [status.UNAUTHENTICATED, status.PERMISSION_DENIED];

/** Every write-service RPC, from the same policy table the server enforces. */
const METHODS = POLICY.filter((p) => p.server === 'write').flatMap(({ service, principal }) =>
  Object.values(service as Record<string, MethodDefinition<unknown, unknown>>).map((m) => ({
    path: m.path,
    streaming: m.responseStream,
    principal,
  })),
);

// Not run with an empty request by the allowed principal (the refusals still cover them):
// ClearLogs would clear every log line, RotateAdminToken would rotate the token, and
// RotateDaemonToken answers UNAUTHENTICATED about the empty daemon token in its body (its
// success path is in feed.test.ts).
const NOT_EXECUTED_WHEN_ALLOWED = new Set([
  '/titanbot.admin.v1.LogService/ClearLogs',
  '/titanbot.admin.v1.AdminTokenService/RotateAdminToken',
  '/titanbot.admin.v1.DataKeyService/RotateDataKey',
  '/titanbot.feed.v1.ChangeFeedService/RotateDaemonToken',
]);

describe('who may call what on the write service', () => {
  let h: Harness;
  /** The write service's clock: the 1 s token expires when it moves, not by sleeping. */
  const clock = new TestClock();
  let raw: Client;
  let devices: DeviceServiceClient;
  let tokens: DaemonTokenServiceClient;
  const keys: Record<string, string | undefined> = {};

  /** The status of `path` called with an empty request and `key`; streams are cancelled after one message. */
  function statusOf(method: (typeof METHODS)[number], key: string | undefined): Promise<status> {
    const identity = (b: Buffer): Buffer => b;
    return new Promise((resolve) => {
      if (!method.streaming) {
        raw.makeUnaryRequest(method.path, identity, identity, Buffer.alloc(0), withKey(key), (err) => resolve(err ? err.code : status.OK));
        return;
      }
      const stream = raw.makeServerStreamRequest(method.path, identity, identity, Buffer.alloc(0), withKey(key));
      stream.on('data', () => {
        resolve(status.OK);
        stream.cancel();
      });
      stream.on('error', (err: { code: status }) => resolve(err.code));
      stream.on('end', () => resolve(status.OK));
    });
  }

  async function issueToken(deviceUuid: string, ttlSeconds?: number): Promise<{ token: string; uuid: string }> {
    const res = await call(
      tokens,
      tokens.issueDaemonToken,
      IssueDaemonTokenRequest.fromPartial({ deviceUuid, ...(ttlSeconds ? { ttl: { seconds: ttlSeconds, nanos: 0 } } : {}) }),
      h.adminToken,
    );
    return { token: res.token, uuid: res.daemonToken!.uuid };
  }

  beforeAll(async () => {
    h = await startHarness({}, clock);
    raw = new Client(h.address, credentials.createInsecure());
    devices = h.client(DeviceServiceClient);
    tokens = h.client(DaemonTokenServiceClient);
    const device = await call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() } }), h.adminToken);
    const valid = await issueToken(device.uuid);
    const revoked = await issueToken(device.uuid);
    await call(tokens, tokens.revokeDaemonToken, { uuid: revoked.uuid }, h.adminToken);
    const expired = await issueToken(device.uuid, 1);
    clock.advance(1_500); // past its 1 s lifetime
    Object.assign(keys, {
      none: undefined,
      wrong: 'not-a-credential-of-this-system',
      malformed: `tbd_${'A'.repeat(33)}`,
      revoked: revoked.token,
      expired: expired.token,
      daemon: valid.token,
      reader: h.readerToken,
      admin: h.adminToken,
    });
  });
  afterAll(async () => {
    raw.close();
    await h.stop();
  });

  it.each(['none', 'wrong', 'malformed', 'revoked', 'expired'])('answers UNAUTHENTICATED on every RPC with credential: %s', async (kind) => {
    for (const method of METHODS) {
      expect({ path: method.path, code: status[await statusOf(method, keys[kind])] }).toEqual({ path: method.path, code: 'UNAUTHENTICATED' });
    }
  });

  it('answers PERMISSION_DENIED on every RPC to a valid daemon token: daemons use the read service', async () => {
    for (const method of METHODS) {
      expect({ path: method.path, code: status[await statusOf(method, keys.daemon)] }).toEqual({ path: method.path, code: 'PERMISSION_DENIED' });
    }
  });

  it.each(['admin', 'reader'] as PrincipalKind[])('lets the %s credential through exactly on its own RPCs and answers PERMISSION_DENIED elsewhere', async (kind) => {
    for (const method of METHODS) {
      if (method.principal !== kind) {
        expect({ path: method.path, code: status[await statusOf(method, keys[kind])] }).toEqual({ path: method.path, code: 'PERMISSION_DENIED' });
      } else if (!NOT_EXECUTED_WHEN_ALLOWED.has(method.path)) {
        expect({ path: method.path, authRefused: AUTH_CODES.includes(await statusOf(method, keys[kind])) }).toEqual({ path: method.path, authRefused: false });
      }
    }
  });

  it('recognises a freshly issued daemon token at once and rejects it with UNAUTHENTICATED once revoked', async () => {
    const device = await call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() } }), h.adminToken);
    const issued = await issueToken(device.uuid);
    expect((await failure(call(devices, devices.getDevice, { uuid: device.uuid }, issued.token))).code).toBe(status.PERMISSION_DENIED);
    await call(tokens, tokens.revokeDaemonToken, { uuid: issued.uuid }, h.adminToken);
    expect((await failure(call(devices, devices.getDevice, { uuid: device.uuid }, issued.token))).code).toBe(status.UNAUTHENTICATED);
  });

  it('never writes a password, private key, admin token or daemon token to the logs', async () => {
    const accounts = h.client(AccountServiceClient);
    const password = `pw-${uniqueInt()}-secret`;
    const logicalId = uniqueInt();
    await call(
      accounts,
      accounts.createAccount,
      CreateAccountRequest.fromPartial({
        account: {
          logicalId,
          firstName: 'Ada',
          lastName: 'Lovelace',
          birthDate: new Date('1990-01-01T00:00:00Z'),
          gender: Gender.GENDER_FEMALE,
          googleLogin: 'ada@example.com',
          googlePassword: password,
        },
      }),
      h.adminToken,
    );
    const device = await call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() } }), h.adminToken);
    await call(devices, devices.bindAccount, BindAccountRequest.fromPartial({ deviceUuid: device.uuid, logicalId }), h.adminToken);
    const ssh = await call(devices, devices.getDeviceSsh, { deviceUuid: device.uuid }, h.adminToken);
    const daemon = await issueToken(device.uuid);
    await failure(call(devices, devices.getDevice, { uuid: device.uuid }, daemon.token));
    await failure(call(devices, devices.getDevice, { uuid: device.uuid }, 'wrong-key-in-a-log-test'));
    const privateKeyBody = ssh.privateKey.split('\n')[1]!;
    const text = h.logs.join('');
    expect(text).toContain('GetDeviceSsh'); // the scenario was logged
    for (const secret of [password, privateKeyBody, h.adminToken, h.readerToken, daemon.token, 'wrong-key-in-a-log-test']) {
      expect(text.includes(secret), `log contains ${secret.slice(0, 8)}...`).toBe(false);
    }
  });
});
