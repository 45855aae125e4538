import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import {
  AccountServiceClient,
  CreateAccountRequest,
  DeleteAccountRequest,
  Gender,
  GetAccountRequest,
  ListAccountsRequest,
  UpdateAccountRequest,
  type Account,
} from '@titanbot/contracts/titanbot/admin/v1/account_service';
import {
  ActivityType,
  BindAccountRequest,
  CreateDeviceRequest,
  DeleteDeviceRequest,
  DeviceServiceClient,
  GetDeviceRequest,
  GetDeviceSshRequest,
  ListDevicesRequest,
  RotateDeviceSshRequest,
  UpdateDeviceRequest,
  type Device,
} from '@titanbot/contracts/titanbot/admin/v1/device_service';
import {
  CreateLegionRequest,
  DeleteLegionRequest,
  LegionServiceClient,
} from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, failure, startHarness, uniqueInt, type Harness } from './support/harness.js';

let h: Harness;
let accounts: AccountServiceClient;
let devices: DeviceServiceClient;
let legions: LegionServiceClient;

beforeAll(async () => {
  h = await startHarness();
  accounts = h.client(AccountServiceClient);
  devices = h.client(DeviceServiceClient);
  legions = h.client(LegionServiceClient);
});
afterAll(async () => {
  await h.stop();
});

const validAccount = (logicalId: number, over: Partial<Account> = {}) => ({
  logicalId,
  firstName: 'Ann',
  lastName: 'Lee',
  birthDate: new Date('1990-05-17T15:30:00Z'),
  gender: Gender.GENDER_FEMALE,
  googleLogin: `ann${logicalId}@example.com`,
  googlePassword: 'secret-pw',
  isEmpireSleeping: true,
  ...over,
});

const createAccount = (logicalId = uniqueInt(), over: Partial<Account> = {}) =>
  call(accounts, accounts.createAccount, CreateAccountRequest.fromPartial({ account: validAccount(logicalId, over) }), h.adminToken);

const createDevice = (physicalId = uniqueInt(), port?: number, requestId = '') =>
  call(
    devices,
    devices.createDevice,
    CreateDeviceRequest.fromPartial({ device: { physicalId }, serverDeviceInternalPort: port, requestId }),
    h.adminToken,
  );

const getDevice = (uuid: string) => call(devices, devices.getDevice, GetDeviceRequest.fromPartial({ uuid }), h.adminToken);
const getSsh = (deviceUuid: string) => call(devices, devices.getDeviceSsh, GetDeviceSshRequest.fromPartial({ deviceUuid }), h.adminToken);
const bind = (deviceUuid: string, logicalId: number) =>
  call(devices, devices.bindAccount, BindAccountRequest.fromPartial({ deviceUuid, logicalId }), h.adminToken);
const deleteDevice = (uuid: string) => call(devices, devices.deleteDevice, DeleteDeviceRequest.fromPartial({ uuid }), h.adminToken);

describe('accounts', () => {
  it('stores only the date of a birth date-time and reads every field back', async () => {
    const logicalId = uniqueInt();
    const created = await createAccount(logicalId);
    expect(created.uuid).toMatch(/^[0-9a-f-]{36}$/);
    const got = await call(accounts, accounts.getAccount, GetAccountRequest.fromPartial({ uuid: created.uuid }), h.adminToken);
    expect(got).toEqual({
      uuid: created.uuid,
      logicalId,
      firstName: 'Ann',
      lastName: 'Lee',
      birthDate: new Date('1990-05-17T00:00:00Z'),
      gender: Gender.GENDER_FEMALE,
      googleLogin: `ann${logicalId}@example.com`,
      googlePassword: 'secret-pw',
      isEmpireSleeping: true,
      legionUuid: undefined,
      etag: created.etag,
    });
    expect(created.birthDate).toEqual(new Date('1990-05-17T00:00:00Z'));
  });

  it('finds the account by ListAccounts with a logical_id filter (OK)', async () => {
    const logicalId = uniqueInt();
    const created = await createAccount(logicalId);
    await createAccount();
    const page = await call(accounts, accounts.listAccounts, ListAccountsRequest.fromPartial({ logicalId }), h.adminToken);
    expect(page.accounts.map((a) => a.uuid)).toEqual([created.uuid]);
    expect(page.nextPageToken).toBe('');
  });

  it('updates every mutable field named in update_mask (OK)', async () => {
    const logicalId = uniqueInt();
    const created = await createAccount(logicalId);
    const legion = await call(legions, legions.createLegion, CreateLegionRequest.fromPartial({ legion: { title: 'L' } }), h.adminToken);
    const updated = await call(
      accounts,
      accounts.updateAccount,
      UpdateAccountRequest.fromPartial({
        account: {
          uuid: created.uuid,
          etag: created.etag,
          firstName: 'Bob',
          lastName: 'Roe',
          birthDate: new Date('2001-12-31T23:59:59Z'),
          gender: Gender.GENDER_MALE,
          googleLogin: 'bob@example.com',
          googlePassword: 'new-pw',
          isEmpireSleeping: false,
          legionUuid: legion.uuid,
        },
        updateMask: ['first_name', 'last_name', 'birth_date', 'gender', 'google_login', 'google_password', 'is_empire_sleeping', 'legion_uuid'],
      }),
      h.adminToken,
    );
    const got = await call(accounts, accounts.getAccount, GetAccountRequest.fromPartial({ uuid: created.uuid }), h.adminToken);
    expect(got).toEqual(updated);
    expect(got).toMatchObject({
      logicalId,
      firstName: 'Bob',
      lastName: 'Roe',
      birthDate: new Date('2001-12-31T00:00:00Z'),
      gender: Gender.GENDER_MALE,
      googleLogin: 'bob@example.com',
      googlePassword: 'new-pw',
      isEmpireSleeping: false,
      legionUuid: legion.uuid,
    });
    expect(got.etag).not.toBe(created.etag);
  });

  it('rejects logical_id in update_mask with INVALID_ARGUMENT naming account.logical_id', async () => {
    const created = await createAccount();
    const err = await failure(
      call(
        accounts,
        accounts.updateAccount,
        UpdateAccountRequest.fromPartial({ account: { uuid: created.uuid, logicalId: uniqueInt() }, updateMask: ['logical_id'] }),
        h.adminToken,
      ),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toContain('account.logical_id');
    const got = await call(accounts, accounts.getAccount, GetAccountRequest.fromPartial({ uuid: created.uuid }), h.adminToken);
    expect(got.logicalId).toBe(created.logicalId);
  });

  it('rejects a duplicate logical_id with ALREADY_EXISTS', async () => {
    const logicalId = uniqueInt();
    await createAccount(logicalId);
    const err = await failure(createAccount(logicalId));
    expect(err.code).toBe(status.ALREADY_EXISTS);
  });

  it('rejects gender UNSPECIFIED with INVALID_ARGUMENT naming account.gender', async () => {
    const err = await failure(createAccount(uniqueInt(), { gender: Gender.GENDER_UNSPECIFIED }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toContain('account.gender');
  });

  it('rejects an empty first_name with INVALID_ARGUMENT naming account.first_name', async () => {
    const err = await failure(createAccount(uniqueInt(), { firstName: '' }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(['account.first_name']);
  });

  it('rejects a missing birth_date with INVALID_ARGUMENT naming account.birth_date', async () => {
    const logicalId = uniqueInt();
    const { birthDate: _omit, ...rest } = validAccount(logicalId);
    const err = await failure(call(accounts, accounts.createAccount, CreateAccountRequest.fromPartial({ account: rest }), h.adminToken));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toContain('account.birth_date');
  });

  it('reports every bad field at once (gender, first_name, birth_date) with INVALID_ARGUMENT', async () => {
    const logicalId = uniqueInt();
    const { birthDate: _omit, ...rest } = validAccount(logicalId, { gender: Gender.GENDER_UNSPECIFIED, firstName: '' });
    const err = await failure(call(accounts, accounts.createAccount, CreateAccountRequest.fromPartial({ account: rest }), h.adminToken));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(expect.arrayContaining(['account.gender', 'account.first_name', 'account.birth_date']));
  });

  it('answers NOT_FOUND for an unknown account uuid', async () => {
    const err = await failure(call(accounts, accounts.getAccount, GetAccountRequest.fromPartial({ uuid: randomUUID() }), h.adminToken));
    expect(err.code).toBe(status.NOT_FOUND);
  });

  it('answers INVALID_ARGUMENT naming uuid for a malformed account uuid', async () => {
    const err = await failure(call(accounts, accounts.getAccount, GetAccountRequest.fromPartial({ uuid: 'not-a-uuid' }), h.adminToken));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(['uuid']);
  });

  it('sets a legion on an account, and deleting the legion clears it on the account (OK)', async () => {
    const legion = await call(
      legions,
      legions.createLegion,
      CreateLegionRequest.fromPartial({ legion: { title: 'Wolves', extTitle: 'W', payDayOfMonth: 15 } }),
      h.adminToken,
    );
    const created = await createAccount(uniqueInt(), { legionUuid: legion.uuid });
    expect(created.legionUuid).toBe(legion.uuid);
    const listed = await call(accounts, accounts.listAccounts, ListAccountsRequest.fromPartial({ legionUuid: legion.uuid }), h.adminToken);
    expect(listed.accounts.map((a) => a.uuid)).toEqual([created.uuid]);
    await call(legions, legions.deleteLegion, DeleteLegionRequest.fromPartial({ uuid: legion.uuid }), h.adminToken);
    const got = await call(accounts, accounts.getAccount, GetAccountRequest.fromPartial({ uuid: created.uuid }), h.adminToken);
    expect(got.legionUuid).toBeUndefined();
  });

  it('rejects an unknown legion_uuid on create with NOT_FOUND', async () => {
    const err = await failure(createAccount(uniqueInt(), { legionUuid: randomUUID() }));
    expect(err.code).toBe(status.NOT_FOUND);
  });
});

describe('devices', () => {
  it('creates a device with only physical_id with the docs/domain.md defaults and its Ssh already present', async () => {
    const physicalId = uniqueInt();
    const created = await createDevice(physicalId);
    const got = await getDevice(created.uuid);
    expect(got).toEqual<Device>({
      uuid: created.uuid,
      physicalId,
      isActive: false,
      isSsh: false,
      isNeedToUpdate: false,
      activityType: ActivityType.ACTIVITY_TYPE_ROWGPLAY,
      isFullServerDetection: false,
      isAbleToClearCache: false,
      goTimeLimitSeconds: 100,
      currentAccountLogicalId: undefined,
      accountLogicalIds: [],
      etag: created.etag,
    });
    const ssh = await getSsh(created.uuid);
    expect(ssh.deviceUuid).toBe(created.uuid);
    expect(ssh.publicKey.startsWith('ssh-ed25519 ')).toBe(true);
    expect(ssh.publicKey.endsWith(` titanbot${physicalId}`)).toBe(true);
    expect(ssh.publicKey).not.toContain('\n');
    expect(ssh.privateKey).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(ssh.serverDeviceInternalPort).toBeGreaterThanOrEqual(18800);
  });

  it('gives two devices distinct ports', async () => {
    const a = await createDevice();
    const b = await createDevice();
    const [sa, sb] = await Promise.all([getSsh(a.uuid), getSsh(b.uuid)]);
    expect(sa.serverDeviceInternalPort).not.toBe(sb.serverDeviceInternalPort);
    expect(sa.publicKey).not.toBe(sb.publicKey);
  });

  it('rejects an explicit port already in use with ALREADY_EXISTS, and frees the port when the device is deleted', async () => {
    const a = await createDevice();
    const port = (await getSsh(a.uuid)).serverDeviceInternalPort;
    const dup = await failure(createDevice(uniqueInt(), port));
    expect(dup.code).toBe(status.ALREADY_EXISTS);
    await deleteDevice(a.uuid);
    expect((await failure(getDevice(a.uuid))).code).toBe(status.NOT_FOUND);
    expect((await failure(getSsh(a.uuid))).code).toBe(status.NOT_FOUND);
    const b = await createDevice(uniqueInt(), port);
    expect((await getSsh(b.uuid)).serverDeviceInternalPort).toBe(port);
  });

  it('rejects a duplicate physical_id with ALREADY_EXISTS', async () => {
    const physicalId = uniqueInt();
    await createDevice(physicalId);
    const err = await failure(createDevice(physicalId));
    expect(err.code).toBe(status.ALREADY_EXISTS);
    const list = await call(devices, devices.listDevices, ListDevicesRequest.fromPartial({ physicalId }), h.adminToken);
    expect(list.devices).toHaveLength(1);
  });

  it('RotateDeviceSsh replaces the key pair, and with port the port (OK)', async () => {
    const physicalId = uniqueInt();
    const d = await createDevice(physicalId);
    const before = await getSsh(d.uuid);
    const rotated = await call(devices, devices.rotateDeviceSsh, RotateDeviceSshRequest.fromPartial({ deviceUuid: d.uuid }), h.adminToken);
    expect(rotated.publicKey).not.toBe(before.publicKey);
    expect(rotated.privateKey).not.toBe(before.privateKey);
    expect(rotated.publicKey.endsWith(` titanbot${physicalId}`)).toBe(true);
    expect(rotated.serverDeviceInternalPort).toBe(before.serverDeviceInternalPort);
    expect(await getSsh(d.uuid)).toEqual(rotated);

    // A port no device can hold yet: above every port the allocator hands out in these tests.
    const newPort = 60000 + Math.floor(Math.random() * 5000);
    const moved = await call(
      devices,
      devices.rotateDeviceSsh,
      RotateDeviceSshRequest.fromPartial({ deviceUuid: d.uuid, port: newPort }),
      h.adminToken,
    );
    expect(moved.serverDeviceInternalPort).toBe(newPort);
    expect(moved.publicKey).not.toBe(rotated.publicKey);
    // The old port is free again.
    const other = await createDevice(uniqueInt(), before.serverDeviceInternalPort);
    expect((await getSsh(other.uuid)).serverDeviceInternalPort).toBe(before.serverDeviceInternalPort);
    await deleteDevice(d.uuid);
  });

  it('BindAccount makes the account current and adds it to account_logical_ids; binding again is idempotent (same etag)', async () => {
    const d = await createDevice();
    const a1 = await createAccount();
    const a2 = await createAccount();
    const first = await bind(d.uuid, a1.logicalId);
    expect(first.currentAccountLogicalId).toBe(a1.logicalId);
    expect(first.accountLogicalIds).toEqual([a1.logicalId]);
    const second = await bind(d.uuid, a2.logicalId);
    expect(second.currentAccountLogicalId).toBe(a2.logicalId);
    expect(second.accountLogicalIds).toEqual([a1.logicalId, a2.logicalId].sort((x, y) => x - y));
    const again = await bind(d.uuid, a2.logicalId);
    expect(again).toEqual(second);
    expect(await getDevice(d.uuid)).toEqual(second);
  });

  it('rejects binding an unknown logical id with NOT_FOUND', async () => {
    const d = await createDevice();
    const err = await failure(bind(d.uuid, uniqueInt()));
    expect(err.code).toBe(status.NOT_FOUND);
    expect((await getDevice(d.uuid)).accountLogicalIds).toEqual([]);
  });

  it('deleting the current account clears current_account_logical_id and removes it from the device', async () => {
    const d = await createDevice();
    const keep = await createAccount();
    const gone = await createAccount();
    await bind(d.uuid, keep.logicalId);
    const bound = await bind(d.uuid, gone.logicalId);
    await call(accounts, accounts.deleteAccount, DeleteAccountRequest.fromPartial({ uuid: gone.uuid }), h.adminToken);
    const got = await getDevice(d.uuid);
    expect(got.currentAccountLogicalId).toBeUndefined();
    expect(got.accountLogicalIds).toEqual([keep.logicalId]);
    expect(got.etag).not.toBe(bound.etag);
  });

  it('rejects UpdateDevice with a stale etag with ABORTED', async () => {
    const d = await createDevice();
    const upd = (etag: string) =>
      call(
        devices,
        devices.updateDevice,
        UpdateDeviceRequest.fromPartial({ device: { uuid: d.uuid, etag, isActive: true }, updateMask: ['is_active'] }),
        h.adminToken,
      );
    const updated = await upd(d.etag);
    expect(updated.isActive).toBe(true);
    expect(updated.etag).not.toBe(d.etag);
    const err = await failure(upd(d.etag));
    expect(err.code).toBe(status.ABORTED);
  });

  it('rejects UpdateDevice without update_mask with INVALID_ARGUMENT naming update_mask', async () => {
    const d = await createDevice();
    const err = await failure(
      call(devices, devices.updateDevice, UpdateDeviceRequest.fromPartial({ device: { uuid: d.uuid, isActive: true } }), h.adminToken),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(['update_mask']);
    expect((await getDevice(d.uuid)).isActive).toBe(false);
  });

  it('updates settings by mask, and clearing go_time_limit_seconds via the mask resets it to 100 (OK)', async () => {
    const d = await createDevice();
    const set = await call(
      devices,
      devices.updateDevice,
      UpdateDeviceRequest.fromPartial({
        device: { uuid: d.uuid, goTimeLimitSeconds: 50, activityType: ActivityType.ACTIVITY_TYPE_AJAGPLAY, isSsh: true },
        updateMask: ['go_time_limit_seconds', 'activity_type', 'is_ssh'],
      }),
      h.adminToken,
    );
    expect(set).toMatchObject({ goTimeLimitSeconds: 50, activityType: ActivityType.ACTIVITY_TYPE_AJAGPLAY, isSsh: true });
    const cleared = await call(
      devices,
      devices.updateDevice,
      UpdateDeviceRequest.fromPartial({ device: { uuid: d.uuid }, updateMask: ['go_time_limit_seconds'] }),
      h.adminToken,
    );
    expect(cleared.goTimeLimitSeconds).toBe(100);
    expect(cleared.activityType).toBe(ActivityType.ACTIVITY_TYPE_AJAGPLAY);
    expect((await getDevice(d.uuid)).goTimeLimitSeconds).toBe(100);
  });

  it('ListDevices with page_size 1 walks every page via next_page_token without repeats', async () => {
    const mine = [await createDevice(), await createDevice(), await createDevice()];
    const seen: string[] = [];
    let token = '';
    for (let i = 0; i < 10_000; i++) {
      const page = await call(devices, devices.listDevices, ListDevicesRequest.fromPartial({ pageSize: 1, pageToken: token }), h.adminToken);
      expect(page.devices.length).toBeLessThanOrEqual(1);
      seen.push(...page.devices.map((d) => d.uuid));
      token = page.nextPageToken;
      if (!token) break;
    }
    expect(token).toBe('');
    expect(new Set(seen).size).toBe(seen.length);
    for (const d of mine) expect(seen).toContain(d.uuid);
    const all = await call(devices, devices.listDevices, ListDevicesRequest.fromPartial({ pageSize: 1000 }), h.adminToken);
    expect(seen).toEqual(all.devices.map((d) => d.uuid));
  });

  it('rejects a bad page_token with INVALID_ARGUMENT naming page_token', async () => {
    const err = await failure(
      call(devices, devices.listDevices, ListDevicesRequest.fromPartial({ pageSize: 1, pageToken: 'garbage!' }), h.adminToken),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.fields).toEqual(['page_token']);
  });

  it('CreateDevice with the same request_id twice returns the same device and creates only one', async () => {
    const physicalId = uniqueInt();
    const requestId = randomUUID();
    const first = await createDevice(physicalId, undefined, requestId);
    const second = await createDevice(physicalId, undefined, requestId);
    expect(second).toEqual(first);
    const list = await call(devices, devices.listDevices, ListDevicesRequest.fromPartial({ physicalId }), h.adminToken);
    expect(list.devices.map((d) => d.uuid)).toEqual([first.uuid]);
  });
});
