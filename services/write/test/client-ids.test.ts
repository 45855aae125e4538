/**
 * Client-assigned ids on create (AIP-133 `<resource>_id`) and an imported SSH key pair: what an
 * importer of the original system's data needs to keep its uuids and the keys its devices trust.
 */
import { randomUUID } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { AccountServiceClient, CreateAccountRequest } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { CreateDeviceRequest, DeviceServiceClient, GetDeviceSshRequest } from '@titanbot/contracts/titanbot/admin/v1/device_service';
import { CreateEmpireDateRequest, EmpireDateServiceClient } from '@titanbot/contracts/titanbot/admin/v1/empire_date_service';
import { CreateHabitRequest, HabitServiceClient } from '@titanbot/contracts/titanbot/admin/v1/habit_service';
import { CreateLegionRequest, LegionServiceClient } from '@titanbot/contracts/titanbot/admin/v1/legion_service';
import { Gender } from '@titanbot/contracts/titanbot/admin/v1/account_service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, failure, startHarness, uniqueInt, type Harness } from './support/harness.js';
import { generateSshKeyPair } from './support/ssh-keys.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

describe('client-assigned ids on create', () => {
  it('keeps the uuid given for every resource, and refuses one that is taken', async () => {
    const legions = h.client(LegionServiceClient);
    const accounts = h.client(AccountServiceClient);
    const habits = h.client(HabitServiceClient);
    const dates = h.client(EmpireDateServiceClient);
    const [legionId, accountId, habitId, dateId] = [randomUUID(), randomUUID().toUpperCase(), randomUUID(), randomUUID()];
    const legion = await call(legions, legions.createLegion, CreateLegionRequest.fromPartial({ legion: { title: 'kept' }, legionId }), h.adminToken);
    expect(legion.uuid).toBe(legionId);
    const account = await call(
      accounts,
      accounts.createAccount,
      CreateAccountRequest.fromPartial({
        account: { logicalId: uniqueInt(), firstName: 'A', lastName: 'B', birthDate: new Date('1990-01-01T00:00:00Z'), gender: Gender.GENDER_MALE, googleLogin: 'a@example.com', googlePassword: 'pw', legionUuid: legionId },
        accountId,
      }),
      h.adminToken,
    );
    expect(account.uuid).toBe(accountId.toLowerCase());
    expect((await call(habits, habits.createHabit, CreateHabitRequest.fromPartial({ habit: { action: 'kept' }, habitId }), h.adminToken)).uuid).toBe(habitId);
    const year = 2100 + (uniqueInt() % 800);
    expect((await call(dates, dates.createEmpireDate, CreateEmpireDateRequest.fromPartial({ empireDate: { date: new Date(`${year}-03-04T00:00:00Z`) }, empireDateId: dateId }), h.adminToken)).uuid).toBe(dateId);

    const again = await failure(call(legions, legions.createLegion, CreateLegionRequest.fromPartial({ legion: { title: 'twice' }, legionId }), h.adminToken));
    expect(again).toMatchObject({ code: status.ALREADY_EXISTS, reason: 'ALREADY_EXISTS' });
    const bad = await failure(call(habits, habits.createHabit, CreateHabitRequest.fromPartial({ habit: {}, habitId: 'not-a-uuid' }), h.adminToken));
    expect(bad).toMatchObject({ code: status.INVALID_ARGUMENT, fields: ['habit_id'] });
  });

  it('creates a device with its uuid and the SSH key pair it already has, refusing halves of two pairs', async () => {
    const devices = h.client(DeviceServiceClient);
    const pair = generateSshKeyPair('titanbot-original');
    const other = generateSshKeyPair('');
    const deviceId = randomUUID();
    const create = (sshPublicKey: string, sshPrivateKey: string, id = deviceId) =>
      call(devices, devices.createDevice, CreateDeviceRequest.fromPartial({ device: { physicalId: uniqueInt() }, deviceId: id, sshPublicKey, sshPrivateKey, serverDeviceInternalPort: 40_000 + (uniqueInt() % 20_000) }), h.adminToken);
    const mismatch = await failure(create(other.public, pair.private, randomUUID()));
    expect(mismatch).toMatchObject({ code: status.INVALID_ARGUMENT, fields: ['ssh_public_key'] });
    expect(await failure(create(pair.public, 'not a key', randomUUID()))).toMatchObject({ code: status.INVALID_ARGUMENT, fields: ['ssh_private_key'] });

    const device = await create(`${pair.public}\n`, pair.private);
    expect(device.uuid).toBe(deviceId);
    const ssh = await call(devices, devices.getDeviceSsh, GetDeviceSshRequest.fromPartial({ deviceUuid: deviceId }), h.adminToken);
    expect(ssh).toMatchObject({ publicKey: pair.public.trim(), privateKey: pair.private });
    expect((await failure(create(pair.public, pair.private))).code).toBe(status.ALREADY_EXISTS);
  });
});
